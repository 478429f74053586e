import { readFileSync } from 'node:fs';

/**
 * Benchmarks compare our figure against a baseline measured in the same run and print the ratio,
 * so a result never depends on how fast this particular machine is.
 */
export interface BenchResult {
  name: string;
  /** Our figure and the baseline's, in the same unit. */
  value: number;
  baseline: number;
  unit: string;
  /** 'lower' when smaller values are better (time), 'higher' for throughput. */
  better: 'lower' | 'higher';
  /** Target for the ratio value/baseline, e.g. { max: 1.5 } or { min: 2 }. */
  target?: { max?: number; min?: number };
  note?: string;
}

export function ratioOf(r: BenchResult): number {
  return r.baseline === 0 ? Infinity : r.value / r.baseline;
}

export function meetsTarget(r: BenchResult): boolean {
  const q = ratioOf(r);
  if (r.target?.max !== undefined && q > r.target.max) return false;
  if (r.target?.min !== undefined && q < r.target.min) return false;
  return true;
}

export function formatResult(r: BenchResult): string {
  const q = ratioOf(r);
  const t = r.target ? ` target ${r.target.max !== undefined ? `≤ ${r.target.max}` : ''}${r.target.min !== undefined ? `≥ ${r.target.min}` : ''}×` : '';
  const verdict = r.target ? (meetsTarget(r) ? 'ok' : 'MISSED') : '';
  return `${r.name}: ${fmt(r.value)} ${r.unit} vs baseline ${fmt(r.baseline)} ${r.unit} → ratio ${q.toFixed(3)}×${t} ${verdict}${r.note ? ` (${r.note})` : ''}`;
}

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(4);
}

/** Median wall time of `fn` in milliseconds over `runs` runs after one warm-up. */
export async function timeMs(fn: () => Promise<unknown> | unknown, runs = 3): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (10 ms ticks). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
