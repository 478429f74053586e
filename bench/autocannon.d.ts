// autocannon ships no types; the part the benchmarks use.
declare module 'autocannon' {
  interface Result {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  }
  function autocannon(opts: { url: string; connections?: number; duration?: number; method?: string; body?: string; headers?: Record<string, string> }): Promise<Result>;
  export default autocannon;
}
