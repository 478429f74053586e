/**
 * The answers one MCP server (on /mcp: one HTTP request) holds together are bounded: answering in
 * JSON, the SDK keeps each until the last of the batch is ready.
 */
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createMcpServer, type CallRecord } from '../../src/mcp/create-server.js';
import type { ToolDef } from '../../src/mcp/tool.js';

const big: ToolDef = {
  name: 'big', title: 'Big', description: 'answers 1 MiB', kind: 'read', input: {}, output: { blob: z.string() },
  async run() {
    return { blob: 'x'.repeat(1 << 20) };
  },
};

describe('createMcpServer: a byte budget across all tool answers', () => {
  it('past the budget a call is answered RESPONSE_TOO_LARGE, and audited so', async () => {
    const calls: CallRecord[] = [];
    const server = createMcpServer([big], { name: 't', version: '0', maxOutputBytes: 5 * (1 << 20), onCall: (c) => void calls.push(c) });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(a);
    const client = new Client({ name: 'c', version: '0' });
    await client.connect(b);
    const answers = [] as Array<{ isError?: boolean; content: Array<{ text: string }> }>;
    for (let i = 0; i < 3; i++) answers.push((await client.callTool({ name: 'big', arguments: {} })) as (typeof answers)[number]);
    await client.close();
    // Each answer is held twice (text and structured): two fit in 5 MiB, the third does not.
    expect(answers.map((r) => Boolean(r.isError))).toEqual([false, false, true]);
    expect(JSON.parse(answers[2].content[0].text)).toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    expect(calls.map((c) => c.code ?? 'ok')).toEqual(['ok', 'ok', 'RESPONSE_TOO_LARGE']);
  });
});
