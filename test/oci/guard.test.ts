import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RegistryClient } from '../../src/oci/client.js';
import { isPublicAddress, NetworkGuard } from '../../src/oci/guard.js';
import { parseReference } from '../../src/oci/reference.js';

interface Seen { method: string; url: string; authorization?: string }

/** A local HTTP server that records every request and answers with `handler`. */
async function server(host: string, handler: (req: IncomingMessage, res: ServerResponse, port: number) => void): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let port = 0;
  const srv: Server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
    handler(req, res, port);
  });
  await new Promise<void>((r) => srv.listen(0, host, r));
  port = (srv.address() as { port: number }).port;
  return { port, seen, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

const DIGEST = 'sha256:' + 'ab'.repeat(32);
const user = { username: 'u', password: 'p' };
const basicHeader = `Basic ${Buffer.from('u:p').toString('base64')}`;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

describe('credentials stay with the registry host (SPEC §3)', () => {
  it('a bearer realm on another host gets no Authorization header', async () => {
    const tokenSrv = await server('127.0.0.2', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: 'anon-token' }));
    });
    closers.push(tokenSrv.close);
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.headers.authorization === 'Bearer anon-token') return void res.writeHead(200).end();
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.2:${tokenSrv.port}/token",service="reg",scope="x"` }).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.0/8'], plainHttp: true, credentials: user });
    try {
      expect(await client.blobExists(DIGEST)).toBe(true);
    } finally {
      await client.close();
    }
    expect(tokenSrv.seen).toHaveLength(1);
    expect(tokenSrv.seen[0].authorization).toBeUndefined();
    expect(tokenSrv.seen[0].url).toContain('scope=repository%3Ateam%2Fapp%3Apull');
    expect(reg.seen.at(-1)!.authorization).toBe('Bearer anon-token');
  });

  it('a bearer realm on the same host but another port is another origin: no credentials', async () => {
    const tokenSrv = await server('127.0.0.1', (_req, res) => res.end(JSON.stringify({ access_token: 't2' })));
    closers.push(tokenSrv.close);
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.headers.authorization === 'Bearer t2') return void res.writeHead(404).end();
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${tokenSrv.port}/token"` }).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, credentials: user });
    try {
      expect(await client.blobExists(DIGEST)).toBe(false);
    } finally {
      await client.close();
    }
    expect(tokenSrv.seen[0].authorization).toBeUndefined();
  });

  it('a bearer realm on the registry itself gets the credentials', async () => {
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.url!.startsWith('/token')) {
        if (req.headers.authorization !== basicHeader) return void res.writeHead(401).end();
        return void res.end(JSON.stringify({ token: 'own' }));
      }
      if (req.headers.authorization === 'Bearer own') return void res.writeHead(200).end();
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${(req.socket.localPort)}/token",service="reg"` }).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, credentials: user });
    try {
      expect(await client.blobExists(DIGEST)).toBe(true);
    } finally {
      await client.close();
    }
    expect(reg.seen.find((s) => s.url.startsWith('/token'))!.authorization).toBe(basicHeader);
  });

  it('a redirect to another host is followed without the Authorization header', async () => {
    const cdn = await server('127.0.0.2', (_req, res) => res.end('{}'));
    closers.push(cdn.close);
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.headers.authorization !== basicHeader) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
      res.writeHead(307, { location: `http://127.0.0.2:${cdn.port}/blob?sig=1` }).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.0/8'], plainHttp: true, credentials: user });
    try {
      const bytes = await client.pullBlobBytes({ digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 });
      expect(bytes.toString()).toBe('{}');
    } finally {
      await client.close();
    }
    expect(reg.seen.at(-1)!.authorization).toBe(basicHeader);
    expect(cdn.seen).toHaveLength(1);
    expect(cdn.seen[0].authorization).toBeUndefined();
  });

  it('a redirect to a link-local address is refused before connecting', async () => {
    const reg = await server('127.0.0.1', (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });
    try {
      await expect(client.pullBlobBytes({ digest: DIGEST, size: 1 })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
    } finally {
      await client.close();
    }
  });

  it('an upload Location on a non-allowed loopback address is refused before any byte goes there (finding 13.1)', async () => {
    const sink = await server('127.0.0.2', (_req, res) => res.writeHead(201).end());
    closers.push(sink.close);
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: `http://127.0.0.2:${sink.port}/upload/1` }).end();
      res.writeHead(201).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });
    try {
      const bytes = Buffer.from('secret layer');
      await expect(client.pushBlob({ digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length }, { bytes })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
    } finally {
      await client.close();
    }
    expect(sink.seen).toHaveLength(0);
    expect(reg.seen.map((s) => s.method)).toEqual(['HEAD', 'POST']);
  });

  it('a chunked upload whose PATCH answer moves the Location to a link-local literal is refused', async () => {
    const reg = await server('127.0.0.1', (req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: '/v2/team/app/blobs/uploads/1' }).end();
      if (req.method === 'PATCH') return void req.resume().on('end', () => res.writeHead(202, { location: 'http://[::ffff:169.254.169.254]/x' }).end());
      res.writeHead(201).end();
    });
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true, monolithicMax: 4, chunkSize: 4 });
    try {
      const bytes = Buffer.from('12345678');
      await expect(client.pushBlob({ digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length }, { bytes })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
    } finally {
      await client.close();
    }
    expect(reg.seen.map((s) => s.method)).toEqual(['HEAD', 'POST', 'PATCH']);
  });

  it('a blob whose bytes do not match its digest is rejected (DIGEST_MISMATCH)', async () => {
    const reg = await server('127.0.0.1', (_req, res) => res.end('{"x":1}'));
    closers.push(reg.close);
    const client = await RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });
    try {
      await expect(client.pullBlobBytes({ digest: DIGEST, size: 7 })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    } finally {
      await client.close();
    }
  });
});

describe('allow-list and address guard: refused before any request', () => {
  it('refuses a registry outside the allow-list', async () => {
    const reg = await server('127.0.0.1', (_req, res) => res.end());
    closers.push(reg.close);
    await expect(RegistryClient.open(parseReference(`127.0.0.1:${reg.port}/team/app`), { allowedRegistries: ['registry.example.com'], allowedAddresses: ['127.0.0.1'], plainHttp: true })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
    expect(reg.seen).toHaveLength(0);
  });

  it('accepts a registry the allow-list names (host:port or host)', async () => {
    const g1 = new NetworkGuard({ allowedRegistries: ['127.0.0.1:5000'] });
    expect(() => g1.assertRegistryAllowed('127.0.0.1:5000')).not.toThrow();
    expect(() => g1.assertRegistryAllowed('127.0.0.1:5001')).toThrow(expect.objectContaining({ code: 'REGISTRY_NOT_ALLOWED' }));
    const g2 = new NetworkGuard({ allowedRegistries: ['ghcr.io'] });
    expect(() => g2.assertRegistryAllowed('ghcr.io')).not.toThrow();
    expect(() => g2.assertRegistryAllowed('GHCR.io:443')).not.toThrow();
    expect(() => g2.assertRegistryAllowed('evil-ghcr.io')).toThrow(expect.objectContaining({ code: 'REGISTRY_NOT_ALLOWED' }));
  });

  it('refuses loopback unless explicitly allowed, with no request made', async () => {
    const reg = await server('127.0.0.1', (_req, res) => res.end());
    closers.push(reg.close);
    for (const host of [`127.0.0.1:${reg.port}`, `localhost:${reg.port}`, `[::ffff:127.0.0.1]:${reg.port}`]) {
      await expect(RegistryClient.open(parseReference(`${host}/team/app`), { plainHttp: true })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
    }
    expect(reg.seen).toHaveLength(0);
  });

  it.each(['10.1.2.3:5000', '192.168.1.10', '172.16.0.1:443', '169.254.169.254:80', '[::1]:5000', '[fe80::1]:5000', '[fd00::1]', '[::ffff:10.0.0.1]:5000', '[::ffff:a9fe:a9fe]', '0.0.0.0:5000', '100.64.0.1'])('refuses %s', async (host) => {
    await expect(RegistryClient.open(parseReference(`${host}/team/app`), { allowedAddresses: ['127.0.0.1'] })).rejects.toMatchObject({ code: 'REGISTRY_NOT_ALLOWED' });
  });

  it('classifies addresses', () => {
    expect(isPublicAddress('8.8.8.8')).toBe(true);
    expect(isPublicAddress('2606:4700::1111')).toBe(true);
    expect(isPublicAddress('127.0.0.2')).toBe(false);
    expect(isPublicAddress('::ffff:10.0.0.1')).toBe(false);
    expect(isPublicAddress('not-an-ip')).toBe(false);
    const g = new NetworkGuard({ allowedAddresses: ['127.0.0.1'] });
    expect(g.addressAllowed('127.0.0.1')).toBe(true);
    expect(g.addressAllowed('127.0.0.2')).toBe(false);
    expect(() => new NetworkGuard({ allowedAddresses: ['nope'] })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  // `Number('')` is 0: a trailing slash once became a /0 that allowed every address.
  it.each(['10.0.0.5/', 'fd00::/', '10.0.0.1/x', '10.0.0.1/33', 'fd00::/129', '10.0.0.1/8/9', '10.0.0.1/ 8', '10.0.0.1/1e1', '10.0.0.1/-1', '10.0.0.1/0008'])('refuses the malformed allowed address %j as USAGE, naming it', (entry) => {
    expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringContaining(JSON.stringify(entry)) }));
  });

  it.each(['0.0.0.0/0', '10.0.0.0/0', '::/0', 'fd00::/0'])('refuses %j: a /0 allows every address, so it is not an exception but no guard', (entry) => {
    expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/every IPv[46] address.*list the addresses/) }));
  });

  // node's BlockList checks an IPv4 address against IPv6 ranges as ::ffff:a.b.c.d: an IPv6 entry
  // holding ::ffff:0:0/96 allowed 127.0.0.1, 169.254.169.254 and every other IPv4 address.
  it.each(['::ffff:0:0/96', '::/80', '::/64', '::/16', '::/8', '::/1', '0:0:0:0:0:0:0:0/96', '::ffff:0:0/100', '::/127'])('refuses %j, which would allow IPv4 addresses through the IPv4-mapped range (USAGE)', (entry) => {
    expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringContaining(JSON.stringify(entry)) }));
  });

  it('takes an entry inside ::ffff:0:0/96 as the IPv4 entry it maps, and nothing more', () => {
    const g = new NetworkGuard({ allowedAddresses: ['::ffff:10.0.0.0/104', '::ffff:7f00:1', '::1'] });
    expect(g.addressAllowed('10.1.2.3')).toBe(true);
    expect(g.addressAllowed('::ffff:10.1.2.3')).toBe(true);
    expect(g.addressAllowed('127.0.0.1')).toBe(true);
    expect(g.addressAllowed('::1')).toBe(true);
    expect(g.addressAllowed('127.0.0.2')).toBe(false);
    expect(g.addressAllowed('169.254.169.254')).toBe(false);
    expect(g.addressAllowed('172.16.0.1')).toBe(false);
    expect(g.addressAllowed('fd00::1')).toBe(false);
  });

  it.each([
    ['10.0.0.1/1', '0.0.0.0/1'],
    ['127.0.0.1/8', '127.0.0.0/8'],
    ['192.168.1.7/24', '192.168.1.0/24'],
    ['fd00::1/64', 'fd00::/64'],
    ['::ffff:10.0.0.1/104', '::ffff:a00:0/104'],
  ])('refuses %j, whose host bits are set, naming the network it is (%s) as USAGE', (entry, network) => {
    expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(new RegExp(`^allowed address ${JSON.stringify(entry).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} has host bits set: as a range it is ${network.replace(/[.]/g, '\\.')}`)) }));
  });

  it.each(['0.0.0.0/1', '128.0.0.0/1', '10.0.0.0/7', '64.0.0.0/2', 'fc00::/6', 'fd00::/9', '2000::/3'])('refuses %j: a prefix shorter than /8 (IPv4) or /16 (IPv6) is not a few private networks (USAGE)', (entry) => {
    expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/prefix shorter than \/(8|16)/) }));
  });

  it('still takes the narrowest allowed prefixes and single addresses', () => {
    const g = new NetworkGuard({ allowedAddresses: ['10.0.0.0/8', 'fd12::/16', '::1/128', '172.16.0.0/12'] });
    expect(g.addressAllowed('10.255.0.1')).toBe(true);
    expect(g.addressAllowed('fd12:ffff::1')).toBe(true);
    expect(g.addressAllowed('::1')).toBe(true);
    expect(g.addressAllowed('172.31.0.1')).toBe(true);
    expect(g.addressAllowed('127.0.0.1')).toBe(false);
    expect(g.addressAllowed('169.254.169.254')).toBe(false);
  });

  it('refuses entries that read as "nothing" but reach loopback; takes the IPv6 private and link-local ranges whole', () => {
    for (const entry of ['0.0.0.0', '0.0.0.0/8', '::ffff:0.0.0.0/104', '::', '::/128']) {
      expect(() => new NetworkGuard({ allowedAddresses: [entry] })).toThrow(/loopback/);
    }
    const g = new NetworkGuard({ allowedAddresses: ['fc00::/7', 'fe80::/10'] });
    expect(g.addressAllowed('fd12:3456::1')).toBe(true);
    expect(g.addressAllowed('fe80::1')).toBe(true);
    expect(g.addressAllowed('::1')).toBe(false);
    expect(g.addressAllowed('127.0.0.1')).toBe(false);
    expect(new NetworkGuard({ allowedAddresses: ['fd00::/8'] }).addressAllowed('fd00:ec2::254')).toBe(true);
    expect(() => new NetworkGuard({ allowedAddresses: ['fe00::/7'] })).toThrow(/shorter than/);
  });

  it('allows exactly the range a well-formed CIDR names', () => {
    const g = new NetworkGuard({ allowedAddresses: [' 10.0.0.0/8 ', 'fd00::/64', '192.168.1.7/32'] });
    expect(g.addressAllowed('10.200.3.4')).toBe(true);
    expect(g.addressAllowed('fd00::1')).toBe(true);
    expect(g.addressAllowed('192.168.1.7')).toBe(true);
    expect(g.addressAllowed('192.168.1.8')).toBe(false);
    expect(g.addressAllowed('169.254.169.254')).toBe(false);
    expect(g.addressAllowed('fd01::1')).toBe(false);
    expect(g.addressAllowed('::1')).toBe(false);
  });
});
