/**
 * Syscalls runc's own init makes *after* it has loaded the container's seccomp filter and before
 * (and including) execve of the app. A profile that denies one of them stops every container from
 * starting, whatever the app does. Measured on this machine kind (runc 1.1.5, libseccomp 2.5.4,
 * x86_64), see docs/profiles.md "Start-up syscalls" for how:
 *  - bisection: an app that only calls exit(2), started under RuntimeDefault with one syscall
 *    removed at a time, repeated until minimal;
 *  - tracing: bpftrace on raw_syscalls:sys_enter of runc:[2:INIT] from the filter load onwards,
 *    40 runs, then 120 runs two at a time, which adds what the Go runtime of runc init calls now
 *    and then (futex, nanosleep, tgkill, …).
 *
 * Our OCI configs always set noNewPrivileges, in which case runc loads the filter as late as possible
 * (just before execve). Without it, runc loads the filter before dropping privileges and needs more.
 */
export const STARTUP_SYSCALLS_NNP: readonly string[] = [
  // required: denying any one of these made the start fail
  'close', 'execve', 'fstatfs', 'getdents64', 'openat', 'write',
  // seen while tracing (Go runtime of runc init; tgkill = goroutine preemption, seen only under
  // load, 2 of 120 starts): denying them makes starts fail or hang sometimes
  'epoll_ctl', 'epoll_pwait', 'futex', 'getpid', 'nanosleep', 'rt_sigreturn', 'sched_yield', 'tgkill',
];

/** The set when noNewPrivileges is false (runc loads the filter before setuid/capset). */
export const STARTUP_SYSCALLS_PRIVILEGED: readonly string[] = [
  ...STARTUP_SYSCALLS_NNP,
  'capget', 'capset', 'chdir', 'faccessat2', 'fstat', 'getcwd', 'getppid', 'newfstatat', 'prctl',
  'read', 'setgid', 'setgroups', 'setuid',
];

export function startupSyscalls(noNewPrivileges = true): readonly string[] {
  return noNewPrivileges ? STARTUP_SYSCALLS_NNP : STARTUP_SYSCALLS_PRIVILEGED;
}
