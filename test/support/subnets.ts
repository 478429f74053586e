/**
 * A `10.N` base (subnets 10.N.<slot>.0/24) for one test file's container networks, unique among
 * the test processes running at once. Files used `10.<range start + pid % 40>` before, with
 * ranges that overlap: two jest workers whose pids agreed modulo 40 put two files' containers on
 * one subnet, their bridges, routes and firewall rules mixed, and the files' "nothing left
 * behind" assertions failed — or a leftover of a run killed earlier (its rules still naming the
 * subnet) failed a later run that drew the same number.
 *
 * A claim is a directory made atomically under the system temp directory, holding the
 * claimer's pid; a claim whose process is gone is taken over (removed, then made again: one
 * taker wins). A base this machine still routes, or has firewall rules or addresses for, is
 * skipped. Claims are released when the process exits.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DIR = join(tmpdir(), 'ct-test-subnets');
/** 10.77 is forward-drop.test.ts's fixed base; 10.230 and up hold the defaults (ct host run 10.231, ct run 10.232) that walkthroughs and examples use. */
const RESERVED = new Set([77]);
const FIRST = 10;
const LAST = 229;
const mine = new Set<number>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function inUseOnThisMachine(): string {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  return `${run('ip', ['-4', 'route', 'show', 'table', 'all'])}\n${run('ip', ['-4', 'addr'])}\n${run('iptables-save', [])}`;
}

let released = false;
function releaseOnExit(): void {
  if (released) return;
  released = true;
  process.once('exit', () => {
    for (const n of mine) {
      try {
        if (Number(readFileSync(join(DIR, String(n), 'pid'), 'utf8')) === process.pid) rmSync(join(DIR, String(n)), { recursive: true, force: true });
      } catch {
        // gone already
      }
    }
  });
}

function tryClaim(n: number): boolean {
  const dir = join(DIR, String(n));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      // being written: taken
      return false;
    }
    // An earlier file of this same worker keeps its claim (its leftovers, if any, are its own).
    if (!Number.isInteger(owner) || owner === process.pid || alive(owner)) return false;
    rmSync(dir, { recursive: true, force: true });
  }
  return false;
}

/** `10.N`, claimed for this process until it exits. */
export function claimSubnetBase(): string {
  mkdirSync(DIR, { recursive: true });
  const used = inUseOnThisMachine();
  // Start where the pid points, so that workers starting together try different numbers first.
  const span = LAST - FIRST + 1;
  for (let i = 0; i < span; i++) {
    const n = FIRST + ((process.pid + i * 7) % span);
    if (RESERVED.has(n) || mine.has(n) || used.includes(`10.${n}.`)) continue;
    if (tryClaim(n)) {
      mine.add(n);
      releaseOnExit();
      return `10.${n}`;
    }
  }
  throw new Error(`no free 10.N test subnet base in 10.${FIRST}–10.${LAST} (claims in ${DIR})`);
}
