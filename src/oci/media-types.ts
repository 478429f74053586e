/** OCI media types and the descriptor/manifest shapes the registry code reads and writes. */
export const MT = {
  imageManifest: 'application/vnd.oci.image.manifest.v1+json',
  imageIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  empty: 'application/vnd.oci.empty.v1+json',
  /** VCS attestation bundle (attestations/bundle.json), as issue 3 names it. */
  vcsBundle: 'application/vnd.verified-container.bundle+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  /** Everything `ct fetch` needs to rebuild the .ctp byte for byte (docs/registry.md). */
  ctpRecipe: 'application/vnd.cerro-torre.ctp.recipe.v1+json',
  ctpSkeleton: 'application/vnd.cerro-torre.ctp.skeleton.v1',
  ctpRaw: 'application/vnd.cerro-torre.ctp.v1',
} as const;

export const MANIFEST_ACCEPT = [MT.imageManifest, MT.imageIndex, MT.dockerManifest, MT.dockerManifestList];

/** `{}`: the config of artifact manifests (image-spec 1.1 "empty descriptor"). */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_DESCRIPTOR = {
  mediaType: MT.empty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_BUNDLE_DIGEST = 'dev.cerro-torre.ctp.digest';
