/**
 * An image name as the kubelet pulls it. containerd completes a name without a registry host as
 * Docker does (distribution/reference ParseNormalizedNamed): `nginx:1.25` is
 * `docker.io/library/nginx:1.25`, `myorg/app` is `docker.io/myorg/app`, the legacy
 * `index.docker.io` is `docker.io`; a first component with a `.` or a `:`, an upper-case letter, or
 * `localhost` is a host and the name is left as it is. (CRI-O may instead search the registries of
 * its registries.conf for a short name: the webhook judges the Docker Hub image, and a pod pinned
 * by the mutating webhook names its registry, so what runs is what was judged.)
 * Written here (it is these few lines): src/oci keeps the host explicit everywhere else, since
 * credentials go to the host a user typed, while in a pod what runs is what the kubelet completes.
 */
export function kubeletImageName(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return `docker.io/library/${image}`;
  const first = image.slice(0, slash);
  if (first === 'index.docker.io') return `docker.io/${image.slice(slash + 1)}`;
  if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) return image;
  return `docker.io/${image}`;
}
