import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CtError } from '../../src/core/errors.js';
import { VordrClient } from '../../host/runtime/vordr.js';
import { codeOfAsync as codeOf } from '../support/error-code.js';

/**
 * A local stand-in for a Vörðr host speaking JSON-RPC 2.0 over HTTP (SPEC §8): two tools with
 * input schemas, an in-memory container table, and the raw requests it received.
 */
let server: Server;
let url: string;
const received: { method: string; params?: { name?: string; arguments?: Record<string, unknown> } }[] = [];
let mode: 'ok' | 'garbage' | 'wrong-id' = 'ok';

beforeAll(async () => {
  const containers = new Map<string, { image: string; state: string }>();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const msg = JSON.parse(body) as { id: number; method: string; params?: { name?: string; arguments?: Record<string, unknown> } };
      received.push({ method: msg.method, params: msg.params });
      const reply = (payload: Record<string, unknown>) => {
        res.setHeader('content-type', 'application/json');
        if (mode === 'garbage') return res.end('<html>proxy error</html>');
        res.end(JSON.stringify({ jsonrpc: '2.0', id: mode === 'wrong-id' ? msg.id + 1 : msg.id, ...payload }));
      };
      if (msg.method === 'tools/list') {
        return reply({
          result: {
            tools: [
              { name: 'vordr_container_create', inputSchema: { type: 'object', required: ['name', 'image'], properties: { name: { type: 'string', pattern: '^[a-z0-9-]+$' }, image: { type: 'string' } }, additionalProperties: false } },
              { name: 'vordr_container_inspect', inputSchema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
              { name: 'vordr_container_list', inputSchema: { type: 'object' } },
            ],
          },
        });
      }
      if (msg.method === 'tools/call') {
        const a = msg.params?.arguments ?? {};
        if (msg.params?.name === 'vordr_container_create') {
          containers.set(a.name as string, { image: a.image as string, state: 'created' });
          return reply({ result: { name: a.name, state: 'created' } });
        }
        if (msg.params?.name === 'vordr_container_inspect') {
          const c = containers.get(a.name as string);
          return c ? reply({ result: { name: a.name, ...c } }) : reply({ error: { code: -32001, message: 'no such container' } });
        }
        if (msg.params?.name === 'vordr_container_list') return reply({ result: { containers: [...containers.keys()] } });
      }
      reply({ error: { code: -32601, message: 'method not found' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});


describe('Vörðr adapter (JSON-RPC 2.0)', () => {
  it('lists tools and calls them with tools/call {name, arguments}', async () => {
    mode = 'ok';
    const v = new VordrClient(url);
    expect((await v.listTools()).map((t) => t.name)).toEqual(['vordr_container_create', 'vordr_container_inspect', 'vordr_container_list']);
    expect(await v.create({ name: 'web-1', image: 'sha256:abc' })).toEqual({ name: 'web-1', state: 'created' });
    expect(await v.inspect({ name: 'web-1' })).toEqual({ name: 'web-1', image: 'sha256:abc', state: 'created' });
    expect(await v.list()).toEqual({ containers: ['web-1'] });
    expect(received.at(-1)).toEqual({ method: 'tools/call', params: { name: 'vordr_container_list', arguments: {} } });
  });

  it("checks arguments against the tool's schema before sending", async () => {
    mode = 'ok';
    const v = new VordrClient(url);
    await v.listTools();
    const before = received.length;
    expect(await codeOf(v.create({ name: 'Web 1; rm -rf /', image: 'x' }))).toBe('USAGE');
    expect(await codeOf(v.create({ name: 'web-2', image: 'x', privileged: true }))).toBe('USAGE');
    expect(await codeOf(v.start({ name: 'web-1' }))).toBe('USAGE'); // not offered by this host
    expect(received.length).toBe(before);
  });

  it('maps JSON-RPC errors, garbage and mismatched ids to stable codes', async () => {
    const v = new VordrClient(url);
    mode = 'ok';
    expect(await codeOf(v.inspect({ name: 'nope' }))).toBe('RUNTIME_FAILED');
    mode = 'garbage';
    expect(await codeOf(new VordrClient(url).listTools())).toBe('NETWORK_ERROR');
    mode = 'wrong-id';
    expect(await codeOf(new VordrClient(url).listTools())).toBe('NETWORK_ERROR');
    mode = 'ok';
    expect(await codeOf(new VordrClient('http://127.0.0.1:1/').listTools())).toBe('NETWORK_ERROR');
    expect(() => new VordrClient('file:///etc/passwd')).toThrow(CtError);
  });
});
