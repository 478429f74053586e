import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { logLimitsFrom } from '../log-limits.js';

/**
 * `ct host run`: the runtime host agent. The host code lives outside src/ and is loaded by path
 * at run time; the library never imports it.
 */
export function register(program: Command): void {
  const host = program.command('host').description('runtime host agent');
  host
    .command('run')
    .description('enrol (once) and run assignments from a deploy server')
    .requiredOption('--server <url>', 'deploy server URL')
    .requiredOption('--name <name>', 'host name ([a-z0-9._-])')
    .requiredOption('--trust-store <file>', 'trust store this host verifies bundles with')
    .option('--state-dir <dir>', 'host state directory', '/var/lib/cerro-torre')
    .option('--enroll-token <token>', 'one-time enrolment token (first start only; or CT_ENROLL_TOKEN)')
    .option('--policies <dir>', 'policy directory this host judges bundles with', 'policies')
    .option('--environment <env>', 'the environment this host serves; assignments for others are refused')
    .option('--network-pool <a.b>', 'bridge networks get subnets <a.b>.<n>.0/24, one per environment', '10.231')
    .option('--bridge-prefix <name>', 'bridge interfaces are named <prefix><n>', 'ctbr')
    .option('--netavark-dir <dir>', 'directory holding netavark and aardvark-dns (default: Podman\'s helper directories)')
    .option('--log-max-size <bytes>', 'rotate each container output stream\'s log at this size (k/m suffixes; 4k-16m)', '10m')
    .option('--log-max-files <n>', 'log files kept per stream', '2')
    .action(
      action(async (o: { server: string; name: string; trustStore: string; stateDir: string; enrollToken?: string; policies: string; environment?: string; networkPool: string; bridgePrefix: string; netavarkDir?: string; logMaxSize: string; logMaxFiles: string }) => {
        const main = new URL('../../../host/main.js', import.meta.url).href;
        const { runHostAgent } = (await import(main)) as { runHostAgent: (o: Record<string, unknown>, io: typeof processIo) => Promise<number> };
        return runHostAgent({ ...o, enrollToken: o.enrollToken ?? process.env.CT_ENROLL_TOKEN, logLimits: logLimitsFrom(o.logMaxSize, o.logMaxFiles) }, processIo);
      }),
    );
}
