/**
 * The served /openapi.json as its ecosystem expects it: Redocly's `recommended` ruleset
 * (@redocly/openapi-core) reports no error: a summary and declared security on every operation
 * (the deliberately public ones with `security: []`), servers, license.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { testServer } from './support.js';

async function lint(doc: unknown): Promise<{ errors: string[]; warnings: number }> {
  const config = await createConfig({ extends: ['recommended'] });
  const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: '/openapi.json', config });
  const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
  return { errors, warnings: problems.length - errors.length };
}

describe('/openapi.json under Redocly recommended rules', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let doc: { servers: unknown[]; info: { license: unknown }; paths: Record<string, Record<string, { summary?: string; security?: unknown[] }>> };
  beforeAll(async () => {
    server = await testServer({});
    doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as typeof doc;
  });
  afterAll(() => server.close());

  it('has no errors', async () => {
    expect((await lint(doc)).errors).toEqual([]);
  });

  it('every operation has a summary and declared security; servers and license are present', () => {
    const ops = Object.values(doc.paths).flatMap((item) => Object.values(item));
    expect(ops.length).toBeGreaterThan(20);
    expect(ops.filter((o) => typeof o.summary !== 'string' || !o.summary || !Array.isArray(o.security))).toEqual([]);
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(doc.paths['/webhooks/github'].post.security).toEqual([{ githubSignature: [] }]);
    expect(doc.paths['/api/v1/deployments'].post.security).toEqual([{ bearer: [] }]);
    expect(doc.servers.length).toBeGreaterThan(0);
    expect(doc.info.license).toEqual({ name: 'Apache-2.0', identifier: 'Apache-2.0' });
  });

  it('the rules are live: an operation without summary or security, or no servers, is an error', async () => {
    const broken = structuredClone(doc) as unknown as { servers?: unknown; paths: Record<string, Record<string, Record<string, unknown>>> };
    delete broken.paths['/api/v1/sync'].post.summary;
    delete broken.paths['/api/v1/sync'].post.security;
    delete broken.servers;
    const rules = (await lint(broken)).errors.map((e) => e.split(':')[0]).sort();
    expect(rules).toEqual(['no-empty-servers', 'operation-summary', 'security-defined']);
  });
});
