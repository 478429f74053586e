/**
 * Verification results keyed as SPEC §4 says: bundle digest + image/artifact digest + trust material
 * digest + policy digest. Any change to one of them is a different key, so nothing stale is served;
 * `clear()` is for revocations. Bounded LRU (Map keeps insertion order).
 */
export class VerificationCache<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly max = 4096) {}

  get(key: string): T | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: T): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
