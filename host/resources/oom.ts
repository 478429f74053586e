import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';

/**
 * Was a process of this cgroup killed by the kernel's OOM killer since `sinceMs`?
 *
 * On this host class the memory controller is cgroup v1 (hybrid mode, SPEC §9), where the
 * `oom_kill` counter lives only in the container's own memory cgroup, which `runc run` removes as
 * soon as the container exits: by the time the exit code is known, the counter is gone. The
 * kernel log keeps the fact, naming the cgroup: `oom-kill:…,oom_memcg=/cerro-torre/<id>,
 * task_memcg=/cerro-torre/<id>,task=…`. It is read from /dev/kmsg (structured records with a
 * boot-relative time), not by parsing `dmesg` output; records before the container started are
 * ignored, so a restarted container is not blamed for an earlier run.
 *
 * Returns undefined when the kernel log cannot be read (the caller reports the exit code only).
 */
export function oomKilledSince(cgroupsPath: string, sinceMs: number, kmsg = '/dev/kmsg'): boolean | undefined {
  let fd: number;
  try {
    fd = openSync(kmsg, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const bootMs = Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
  const needle = `task_memcg=${cgroupsPath},`;
  const buf = Buffer.alloc(8192);
  let found = false;
  try {
    // One record per read; the ring buffer is bounded, and so is this loop.
    for (let i = 0; i < 200_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records overwritten while reading: go on with the next
        break; // EAGAIN: the end of the log
      }
      if (n <= 0) break;
      const rec = buf.toString('utf8', 0, n);
      if (!rec.includes('oom-kill:') || !rec.includes(needle)) continue;
      const semi = rec.indexOf(';');
      const usec = Number(rec.slice(0, semi).split(',')[2]);
      if (bootMs + usec / 1000 >= sinceMs - 1000) found = true;
    }
  } finally {
    closeSync(fd);
  }
  return found;
}
