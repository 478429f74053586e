/**
 * The host's accepted generation, saved in two slots of one file kept open (#14 target 8): it
 * survives a restart, a save torn by a crash leaves the previous one, a record of another
 * enrolment does not count, the generation an older agent kept in enrolment.json is honoured, a
 * real agent refuses a replayed assignment after a restart, and once the record exists a missing
 * or wholly damaged one stops the agent (HOST_STATE_INVALID) instead of being made again from an
 * older generation.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../../host/agent/agent.js';
import { GenerationRecord } from '../../host/agent/generation-record.js';
import type { Assignment } from '../../src/protocol/messages.js';
import { FACTS, handServer, until } from '../server/channel/support.js';

const HOST = '11111111-1111-4111-8111-111111111111';
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ct-generation-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes raw bytes at an offset of the record file, as a crash in the middle of a write would leave them. */
const scribble = (dir: string, offset: number, bytes: Buffer) => {
  const fd = openSync(join(dir, 'generation'), 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
};

describe('the generation record', () => {
  it('keeps the highest generation saved across a reopen, in a file of fixed size', async () => {
    const dir = tmp();
    const r = await GenerationRecord.open(dir, HOST, 0);
    expect(r.generation).toBe(0);
    for (const g of [1, 2, 7]) await r.save(g);
    await r.close();
    expect(statSync(join(dir, 'generation')).size).toBe(8192);
    expect((statSync(join(dir, 'generation')).mode & 0o777).toString(8)).toBe('600');
    const again = await GenerationRecord.open(dir, HOST, 0);
    expect(again.generation).toBe(7);
    await again.save(8);
    await again.close();
    expect((await GenerationRecord.open(dir, HOST, 0)).generation).toBe(8);
  });

  it('keeps the last synced generation when a save was torn by a crash, and saves again after it', async () => {
    const dir = tmp();
    const r = await GenerationRecord.open(dir, HOST, 0);
    await r.save(41);
    await r.save(42);
    await r.close();
    // 42 is in one slot, 41 in the other: the next save goes to 41's slot. A crash in the middle
    // of it leaves part of the new record over the old one.
    const text = readFileSync(join(dir, 'generation'), 'latin1');
    const older = text.indexOf('"generation":41') < 4096 ? 0 : 4096;
    scribble(dir, older, Buffer.from('f00d'.repeat(20)));
    const after = await GenerationRecord.open(dir, HOST, 0);
    expect(after.generation).toBe(42);
    await after.save(43);
    await after.close();
    expect((await GenerationRecord.open(dir, HOST, 0)).generation).toBe(43);
    // A slot edited by hand (its hash no longer matches) does not count either.
    const edited = readFileSync(join(dir, 'generation'), 'latin1').replace('"generation":43', '"generation":99');
    writeFileSync(join(dir, 'generation'), edited, 'latin1');
    expect((await GenerationRecord.open(dir, HOST, 0)).generation).toBe(42);
  });

  it('ignores the record of another enrolment, honours a higher generation from enrolment.json, and remakes a damaged file', async () => {
    const dir = tmp();
    const r = await GenerationRecord.open(dir, HOST, 0);
    await r.save(30);
    await r.close();
    // The same state directory enrolled again: another host id starts from its own floor.
    const other = await GenerationRecord.open(dir, '22222222-2222-4222-8222-222222222222', 0);
    expect(other.generation).toBe(0);
    await other.save(1);
    await other.close();
    // An older agent's enrolment.json said 50: the record holds at least that from now on.
    const upgraded = await GenerationRecord.open(dir, HOST, 50);
    expect(upgraded.generation).toBe(50);
    await upgraded.close();
    expect((await GenerationRecord.open(dir, HOST, 0)).generation).toBe(50);
    // Before the enrolment made its record (an older agent's state), a damaged file is made again from what is known.
    writeFileSync(join(dir, 'generation'), 'junk');
    const remade = await GenerationRecord.open(dir, HOST, 3);
    expect(remade.generation).toBe(3);
    await remade.close();
    expect(statSync(join(dir, 'generation')).size).toBe(8192);
  });

  it('once established, a missing, truncated or wholly damaged record is HOST_STATE_INVALID, never made again from an older generation', async () => {
    const dir = tmp();
    const r = await GenerationRecord.open(dir, HOST, 0);
    for (const g of [48, 49, 50]) await r.save(g);
    await r.close();
    // The slots sit in different 4 KiB blocks: a torn or zeroed first block leaves the other slot.
    scribble(dir, 0, Buffer.alloc(4096, 0));
    const one = await GenerationRecord.open(dir, HOST, 0, true);
    expect(one.generation).toBeGreaterThanOrEqual(49);
    await one.close();
    scribble(dir, 4096, Buffer.alloc(4096, 0));
    await expect(GenerationRecord.open(dir, HOST, 0, true)).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
    writeFileSync(join(dir, 'generation'), readFileSync(join(dir, 'generation')).subarray(0, 4096));
    await expect(GenerationRecord.open(dir, HOST, 0, true)).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
    unlinkSync(join(dir, 'generation'));
    await expect(GenerationRecord.open(dir, HOST, 0, true)).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
  });

  it('reads back a host id outside latin1 (hashed as stored, in UTF-8)', async () => {
    const dir = tmp();
    const id = 'host-\u0101-\u{1F600}';
    const r = await GenerationRecord.open(dir, id, 0);
    await r.save(77);
    await r.close();
    const again = await GenerationRecord.open(dir, id, 0, true);
    expect(again.generation).toBe(77);
    await again.close();
  });

  it('refuses to save once closed', async () => {
    const r = await GenerationRecord.open(tmp(), HOST, 0);
    await r.close();
    await expect(r.save(1)).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
});

describe('a real agent and its generation', () => {
  const DIGEST = `sha256:${'a'.repeat(64)}`;
  const assign = (deploymentId: string, generation: number): Assignment => ({
    deploymentId, generation, environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}`, bundleDigest: DIGEST, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${DIGEST}`,
  });

  it('refuses a replayed assignment after a restart, and the generation an older agent saved in enrolment.json', async () => {
    const stateDir = tmp();
    // Enrolled by an older agent that had accepted generation 9 (kept in enrolment.json).
    const server = await handServer(stateDir, { features: ['status.containers'], generation: 9 });
    const start = () => startAgent({
      serverUrl: server.url, stateDir, name: 'gen-host', facts: async () => FACTS, maxBackoffMs: 300,
      // The download fails (this server serves no bundle): the answer after the generation check.
      runner: { run: async () => ({ state: 'running' }) }, inventory: async () => [],
    });
    const statusOf = async (deploymentId: string) => {
      const find = () => server.received.find((m) => m.type === 'status' && m.deploymentId === deploymentId);
      await until(`status of ${deploymentId}`, () => Boolean(find()));
      return find();
    };
    let agent = await start();
    try {
      await until('connected', () => agent.connected());
      server.send({ type: 'assign', assignment: assign('dep-9', 9) });
      expect(await statusOf('dep-9')).toMatchObject({ state: 'refused', code: 'STALE_GENERATION' });
      // An integer past 2^53 (1e21) is no generation: it would name root filesystems no clean-up knows.
      server.send({ type: 'assign', assignment: assign('dep-huge', 1e21) });
      expect(await statusOf('dep-huge')).toMatchObject({ state: 'refused', code: 'STALE_GENERATION' });
      server.send({ type: 'assign', assignment: assign('dep-12', 12) });
      expect(await statusOf('dep-12')).toMatchObject({ state: 'failed', code: 'NETWORK_ERROR' });
      await agent.stop();
      agent = await start();
      await until('connected again', () => agent.connected() && server.welcomed() === 2);
      // Replayed into the new connection: refused, since 12 was saved before the host acted on it.
      server.send({ type: 'assign', assignment: assign('dep-12-replayed', 12) });
      expect(await statusOf('dep-12-replayed')).toMatchObject({ state: 'refused', code: 'STALE_GENERATION', message: 'generation 12 is not above 12' });
      expect((await GenerationRecord.open(stateDir, server.hostId, 0).then(async (r) => (await r.close(), r))).generation).toBe(12);
      // enrolment.json now says the record took over, with a generation no older agent can get
      // past: a downgraded agent refuses every assignment rather than taking replays.
      expect(JSON.parse(readFileSync(join(stateDir, 'enrolment.json'), 'utf8'))).toMatchObject({ generationRecord: true, generation: Number.MAX_SAFE_INTEGER });
      await agent.stop();
      // The record zeroed (a torn block each) or deleted: the agent does not start.
      scribble(stateDir, 0, Buffer.alloc(8192, 0));
      await expect(start()).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
      unlinkSync(join(stateDir, 'generation'));
      await expect(start()).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
    } finally {
      await agent.stop();
      await server.close();
    }
  });

  it('does not hold a status back for a slow inventory: it goes alone, and the inventory follows', async () => {
    const stateDir = tmp();
    mkdirSync(join(stateDir, 'bundles'), { recursive: true });
    writeFileSync(join(stateDir, 'bundles', `${DIGEST.slice(7)}.ctp`), 'bundle');
    const server = await handServer(stateDir, { features: ['status.containers'] });
    let calls = 0;
    // Quick at connect; then as slow as a runner's inventory queued behind other work.
    const inventory = async () => {
      if (calls++ > 0) await new Promise((r) => setTimeout(r, 1500));
      return [];
    };
    const agent = await startAgent({ serverUrl: server.url, stateDir, name: 'slow-inventory', facts: async () => FACTS, maxBackoffMs: 300, runner: { run: async () => ({ state: 'running' }) }, inventory });
    try {
      await until('connected', () => agent.connected() && server.received.some((m) => m.type === 'containers'));
      const before = server.received.filter((m) => m.type === 'containers').length;
      server.send({ type: 'assign', assignment: assign('dep-1', 1) });
      await until('status', () => server.received.some((m) => m.type === 'status'), 1000);
      const status = server.received.find((m) => m.type === 'status') as Record<string, unknown>;
      expect(status).toMatchObject({ deploymentId: 'dep-1', state: 'running' });
      expect(status.containers).toBeUndefined();
      await until('the inventory after it', () => server.received.filter((m) => m.type === 'containers').length > before, 5000);
    } finally {
      await agent.stop();
      await server.close();
    }
  });
});
