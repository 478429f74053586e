/**
 * What promotion needs from a forge (GitHub, GitLab), as one small interface: read a file at a
 * ref with a version token, write it only if that version is still current (so someone else's
 * edit is never overwritten), branches, one change request (pull / merge request) per branch,
 * and a commit status. One file per provider implements it (github.ts, gitlab.ts).
 */
export interface FileVersion {
  text: string;
  /** What the write must name to succeed only if the file did not change meanwhile (blob sha, commit id). */
  version: string;
}

export interface ChangeRequest {
  number: number;
  url: string;
  headSha: string;
  title: string;
  body: string;
}

export type CommitState = 'success' | 'failure' | 'pending';

export interface CommitStatus {
  state: CommitState;
  context: string;
  description: string;
  targetUrl?: string;
}

export type WriteOutcome = { ok: true; commit: string } | { ok: false; conflict: true };

export interface Forge {
  readonly kind: 'github' | 'gitlab';
  /** Releases the client's connections (the guarded agent). */
  close?(): Promise<void>;
  defaultBranch(): Promise<string>;
  /** Head commit of a branch, undefined when it does not exist. */
  branchHead(branch: string): Promise<string | undefined>;
  /** Creates a branch at a commit; false when it exists already (someone else created it meanwhile). */
  createBranch(branch: string, sha: string): Promise<boolean>;
  /**
   * Points an existing branch at a commit, whatever it held: a promotion branch left behind by a
   * merged (squash-merged) or closed change is started again from the base, as Renovate and
   * Dependabot do, so that the new change carries only its own edit.
   */
  resetBranch(branch: string, sha: string): Promise<void>;
  readFile(path: string, ref: string): Promise<FileVersion | undefined>;
  writeFile(path: string, branch: string, text: string, version: string, message: string): Promise<WriteOutcome>;
  /**
   * The head commits of the change requests from `branch` (into any base) that ended, merged or
   * closed, or `open` when one from it is still open. A promotion branch is started over only when
   * its head is one of those ended heads: nothing was pushed to it since, so every commit it holds
   * stays reachable from the ended change (GitHub refs/pull/N/head, GitLab
   * refs/merge-requests/N/head). A branch under an open change (whatever its base), or with
   * commits nobody reviewed, is never reset.
   */
  endedChangeHeads(branch: string): Promise<{ open: boolean; heads: string[] }>;
  /** The open change request from `branch` into `base`, if any. */
  findChange(branch: string, base: string): Promise<ChangeRequest | undefined>;
  openChange(c: { branch: string; base: string; title: string; body: string }): Promise<ChangeRequest>;
  updateChange(number: number, c: { title: string; body: string }): Promise<ChangeRequest>;
  /** The latest status with this context on a commit, if any (so that a rerun posts nothing new). */
  getStatus(sha: string, context: string): Promise<CommitStatus | undefined>;
  setStatus(sha: string, s: CommitStatus): Promise<void>;
}
