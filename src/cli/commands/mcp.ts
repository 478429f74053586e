/**
 * `ct mcp`: an MCP server on stdio for a local agent. The library's read-only tools over local
 * files; with `--server` and a credential, the deploy server's tools too (acting with that
 * credential, so the server's roles and audit apply). Nothing but protocol goes to stdout.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { action } from '../io.js';
import { serverToken, serverUrl } from '../server-api.js';
import { createMcpServer } from '../../mcp/create-server.js';
import { localTools } from '../../mcp/local-tools.js';
import { serverTools } from '../../mcp/server-tools.js';
import { ApiClient } from '../../mcp/api-client.js';
import type { ToolDef } from '../../mcp/tool.js';

interface McpOptions {
  server?: string;
  tokenEnv: string;
  root?: string;
  readOnly?: boolean;
}

export function register(program: Command): void {
  program
    .command('mcp')
    .description('serve MCP tools on stdio for a local agent (local bundle tools; the deploy server\'s with --server)')
    .option('--server <url>', 'deploy server URL: add its tools, called with the credential in --token-env')
    .option('--token-env <name>', 'environment variable holding the API key or OIDC token for --server', 'CT_TOKEN')
    .option('--root <dir>', 'directory the local tools may read (default: the working directory)')
    .option('--read-only', 'leave out the tools that change what runs (sync, rollback, …)')
    .action(
      action(async (o: McpOptions) => {
        const tools: ToolDef[] = localTools(resolve(o.root ?? '.'));
        if (o.server) {
          const url = serverUrl(o.server);
          const token = serverToken(o.tokenEnv);
          // The server's tools take the shared names; the local ones stay reachable as local_*.
          const remote = serverTools(new ApiClient(url.href, token));
          const taken = new Set(remote.map((t) => t.name));
          for (const t of tools) if (taken.has(t.name)) t.name = `local_${t.name}`;
          tools.push(...remote);
        }
        const server = createMcpServer(tools, { name: 'cerro-torre-cli', version: '0.1.0', readOnly: o.readOnly });
        const transport = new StdioServerTransport();
        await server.connect(transport);
        // Serve until the agent closes stdin.
        await new Promise<void>((done) => {
          server.server.onclose = () => done();
          process.stdin.once('end', () => done());
          process.stdin.once('close', () => done());
        });
        await server.close();
        return 0;
      }),
    );
}
