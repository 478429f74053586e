import type { Command } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { action, processIo } from '../io.js';
import { CtError } from '../../core/errors.js';
import { parsePublishFlag, MAX_PUBLISHED_PORTS, type PublishedPort } from '../../protocol/ports.js';
import { addVerifyOptions, verifyOptionsFrom, type VerifyFlags } from '../verify-options.js';
import { formatReport } from './verify.js';
import { logLimitsFrom } from '../log-limits.js';
import { parseStateDir } from '../state-dir.js';
import type { VerificationReport } from '../../verify/report.js';

interface RunFlags extends VerifyFlags {
  publish: string[];
  policies?: string;
  environment: string;
  name?: string;
  stateDir?: string;
  networkPool: string;
  bridgePrefix: string;
  netavarkDir?: string;
  logMaxSize?: string;
  logMaxFiles?: string;
}

/** host/run/run.ts's entry, restated: the library never imports host/ (not even its types). */
type RunBundle = (o: Record<string, unknown>, io: {
  err(t: string): void; stdout(t: string): void; stderr(t: string): void;
  report(r: VerificationReport): void; onSignal(h: (s: NodeJS.Signals) => void): () => void;
}) => Promise<number>;

/** Root runs keep their state under /run (gone at reboot, like the containers); others under the user's runtime directory. */
function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/run/cerro-torre/run';
  return join(process.env.XDG_RUNTIME_DIR || tmpdir(), `cerro-torre-run-${process.getuid?.() ?? 'user'}`);
}

/**
 * `ct run BUNDLE.ctp [-p [ADDR:]HOST:CONTAINER[/PROTO]]…`: verify, then run in the foreground under
 * the host's enforcement (host/run). The host code is loaded by path at run time; the library
 * never imports it.
 */
export function register(program: Command): void {
  const cmd = program
    .command('run')
    .description('verify a .ctp bundle, then run it here in the foreground under the enforcement a host applies (like docker run)')
    .argument('<bundle>', '.ctp file');
  addVerifyOptions(cmd)
    .option('-p, --publish <spec>', 'publish a port: [ADDRESS:]HOST:CONTAINER[/tcp|udp|sctp] (address 127.0.0.1 unless given); repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--policies <dir>', 'judge the bundle with these Gatekeeper policies and grant what they allow, as a host does (default: no policy: rootless, no extra capability, ports as -p says)')
    .option('--environment <env>', 'environment the policies are judged for; names the bridge network', 'local')
    .option('--name <name>', 'container name (default run-<bundle name>-<random>)')
    .option('--state-dir <dir>', 'where runs keep their state (default /run/cerro-torre/run as root)', parseStateDir)
    .option('--network-pool <a.b>', 'bridge networks get subnets <a.b>.<n>.0/24 (apart from a host agent\'s)', '10.232')
    .option('--bridge-prefix <name>', 'bridge interfaces are named <prefix><n>', 'ctrun')
    .option('--netavark-dir <dir>', 'directory holding netavark and aardvark-dns (default: Podman\'s helper directories)')
    .option('--log-max-size <bytes>', 'rotate each output stream\'s log at this size (k/m suffixes; 4k-16m)', '10m')
    .option('--log-max-files <n>', 'log files kept per stream', '2')
    .action(
      action(async (bundle: string, o: RunFlags) => {
        if (o.publish.length > MAX_PUBLISHED_PORTS) throw new CtError('USAGE', `at most ${MAX_PUBLISHED_PORTS} ports`, {});
        const ports: PublishedPort[] = o.publish.map((spec) => {
          const r = parsePublishFlag(spec);
          if ('problem' in r) throw new CtError('USAGE', `-p ${r.problem}`, {});
          return r.port;
        });
        const { options, policyWarnings } = await verifyOptionsFrom('run', o);
        const main = new URL('../../../host/run/run.js', import.meta.url).href;
        const { runBundle } = (await import(main)) as { runBundle: RunBundle };
        return runBundle({
          bundle, verify: options, ports, policies: o.policies, environment: o.environment, name: o.name, stateDir: o.stateDir ?? defaultStateDir(),
          networkPool: o.networkPool, bridgePrefix: o.bridgePrefix, netavarkDir: o.netavarkDir, logLimits: logLimitsFrom(o.logMaxSize, o.logMaxFiles),
        }, {
          err: processIo.err,
          stdout: (t) => process.stdout.write(t),
          stderr: (t) => process.stderr.write(t),
          report: (r) => {
            r.warnings.unshift(...policyWarnings);
            processIo.err(formatReport(bundle, r));
          },
          onSignal: (handler) => {
            process.on('SIGINT', handler);
            process.on('SIGTERM', handler);
            return () => {
              process.off('SIGINT', handler);
              process.off('SIGTERM', handler);
            };
          },
        });
      }),
    );
}
