import { describe, expect, it } from '@jest/globals';
import { parseManifest, serializeManifest } from '../../src/bundle/manifest.js';

const HEAD = `name = "web"\nversion = "1.0.0"\nimage_digest = "sha256:${'a'.repeat(64)}"\n[metadata]\nbuild_timestamp = "2026-01-01T00:00:00Z"\nbuilder = "ct"\n`;

describe('manifest [runtime] lifecycle keys', () => {
  it('parses restart, health check, resources and ulimits, and round-trips them', () => {
    const m = parseManifest(`${HEAD}[runtime]\nrestart = "on-failure"\nstop_grace_period = 3\n[runtime.healthcheck]\ntype = "http"\nport = 8080\npath = "/healthz"\ninterval = 1\ntimeout = 0.5\nretries = 2\nstart_period = 5\n[runtime.resources]\nmemory = "64M"\ncpus = 0.5\npids = 100\n[runtime.ulimits]\nnofile = { soft = 1024, hard = 2048 }\n`);
    expect(m.runtime).toEqual({
      restart: 'on-failure', stop_grace_period: 3,
      healthcheck: { type: 'http', port: 8080, path: '/healthz', interval: 1, timeout: 0.5, retries: 2, start_period: 5 },
      resources: { memory: 64 * 1024 * 1024, cpus: 0.5, pids: 100 },
      ulimits: { nofile: { soft: 1024, hard: 2048 } },
    });
    expect(parseManifest(serializeManifest(m)).runtime).toEqual(m.runtime);
  });

  it('fills health-check defaults and takes an exec command', () => {
    const m = parseManifest(`${HEAD}[runtime.healthcheck]\ntype = "exec"\ncommand = ["/bin/true"]\n`);
    expect(m.runtime?.healthcheck).toEqual({ type: 'exec', command: ['/bin/true'], interval: 10, timeout: 5, retries: 3, start_period: 0 });
  });

  it('reports every bad field at once, with bounds', () => {
    let message = '';
    try {
      parseManifest(`${HEAD}[runtime]\nrestart = "sometimes"\n[runtime.healthcheck]\ntype = "http"\nport = 70000\ninterval = 100000\n[runtime.resources]\nmemory = "1K"\npids = -1\nswap = 1\n[runtime.ulimits]\nnofile = { soft = 10, hard = 5 }\n`);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('MANIFEST_INVALID');
      message = (e as Error).message;
    }
    for (const p of ['runtime.restart', 'runtime.healthcheck.port', 'runtime.healthcheck.interval', 'runtime.resources.memory', 'runtime.resources.pids', 'runtime.resources.swap', 'runtime.ulimits.nofile']) {
      expect(message).toContain(p);
    }
  });
});
