/**
 * A replace record's health check is read back under the manifest's own rules (savedHealthcheck):
 * a damaged one is refused, not run. Before, a check without start_period passed (NaN: failures
 * were never counted, and the agent's recovery waited forever before it connected).
 */
import { describe, it, expect } from '@jest/globals';
import { parseReplaceRecord } from '../../host/lifecycle/replace-record.js';
import { savedHealthcheck } from '../../src/bundle/runtime-extras.js';

const hc = { type: 'exec', command: ['/bin/true'], interval: 1, timeout: 1, retries: 3, start_period: 0 };
const record = (healthcheck: unknown) => JSON.stringify({ version: 1, id: 'prod-app', rootfs: '/var/lib/ct/rootfs/x', assigned: '{}', healthcheck });

describe('replace record health check', () => {
  it('a check as the host saves it is read back whole', () => {
    expect(parseReplaceRecord(record(hc), 'prod-app').healthcheck).toEqual(hc);
    expect(savedHealthcheck({ type: 'http', port: 8080, path: '/healthz', interval: 2, timeout: 1, retries: 2, start_period: 5 })).toMatchObject({ port: 8080 });
  });

  it.each([
    ['no start_period', { ...hc, start_period: undefined }],
    ['no timeout', { ...hc, timeout: undefined }],
    ['a start_period as text', { ...hc, start_period: '0' }],
    ['retries beyond the manifest limit', { ...hc, retries: 1e9 }],
    ['an interval of 0 (a busy loop)', { ...hc, interval: 0 }],
    ['an exec check without a command', { ...hc, command: undefined }],
    ['an unknown type', { ...hc, type: 'grpc' }],
    ['an unknown field', { ...hc, shell: 'sh -c' }],
  ])('%s is a damaged record', (_name, bad) => {
    const damaged = JSON.parse(JSON.stringify(bad)) as Record<string, unknown>;
    expect(savedHealthcheck(damaged)).toBeUndefined();
    expect(() => parseReplaceRecord(record(damaged), 'prod-app')).toThrow(/bad healthcheck/);
  });
});
