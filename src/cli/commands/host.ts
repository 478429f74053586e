import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { logLimitsFrom, parseSize } from '../log-limits.js';
import { CtError } from '../../core/errors.js';
import { registerFleet } from './host-fleet.js';
import { parseStateDir } from '../state-dir.js';

/**
 * `ct host run`: the runtime host agent. The host code lives outside src/ and is loaded by path
 * at run time; the library never imports it.
 */
export function register(program: Command): void {
  const host = program.command('host').description('runtime host agent, its containers (on the host), and the fleet (token, list, remove: on the deploy server)');
  host
    .command('run')
    .description('enrol (once) and run assignments from a deploy server')
    .requiredOption('--server <url>', 'deploy server URL')
    .requiredOption('--name <name>', 'host name ([a-z0-9._-])')
    .requiredOption('--trust-store <file>', 'trust store this host verifies bundles with')
    .option(...STATE_DIR)
    .option('--enroll-token <token>', 'one-time enrolment token (first start only; or CT_ENROLL_TOKEN)')
    .option('--policies <dir>', 'policy directory this host judges bundles with', 'policies')
    .option('--trusted-root <file>', 'Sigstore TrustedRoot JSON for keyless attestations signed by the policies\' keyless signers (default: the public-good root shipped offline)')
    .option('--environment <env>', 'the environment this host serves; assignments for others are refused')
    .option('--network-pool <a.b>', 'bridge networks get subnets <a.b>.<n>.0/24, one per environment', '10.231')
    .option('--bridge-prefix <name>', 'bridge interfaces are named <prefix><n>', 'ctbr')
    .option('--netavark-dir <dir>', 'directory holding netavark and aardvark-dns (default: Podman\'s helper directories)')
    .option('--log-max-size <bytes>', 'rotate each container output stream\'s log at this size (k/m suffixes; 4k-16m)', '10m')
    .option('--log-max-files <n>', 'log files kept per stream', '2')
    .option('--handshake-timeout <seconds>', 'give up on a channel whose server has not welcomed it within this time, and connect again (5-600; at least the server\'s hostChannel.handshakeMs)', '30')
    .option('--ping-interval <seconds>', 'once welcomed, ping the server this often; after 2 intervals in a row with nothing from it, connect again (5-600)', '30')
    .option('--unknown-grace <minutes>', 'stop (exit 12, HOST_UNKNOWN) only once the server has said, signed, on every connection for this long, that it has no record of this host (1-1440)', '30')
    .action(
      action(async (o: { server: string; name: string; trustStore: string; trustedRoot?: string; stateDir: string; enrollToken?: string; policies: string; environment?: string; networkPool: string; bridgePrefix: string; netavarkDir?: string; logMaxSize: string; logMaxFiles: string; handshakeTimeout: string; pingInterval: string; unknownGrace: string }) => {
        const handshakeMs = handshakeTimeoutMs(o.handshakeTimeout);
        const pingMs = pingIntervalMs(o.pingInterval);
        const unknownGraceMs = unknownGraceMinutesMs(o.unknownGrace);
        const main = new URL('../../../host/main.js', import.meta.url).href;
        const { runHostAgent } = (await import(main)) as { runHostAgent: (o: Record<string, unknown>, io: typeof processIo) => Promise<number> };
        return runHostAgent({ ...o, handshakeMs, pingMs, unknownGraceMs, enrollToken: o.enrollToken ?? process.env.CT_ENROLL_TOKEN, logLimits: logLimitsFrom(o.logMaxSize, o.logMaxFiles) }, processIo);
      }),
    );

  registerLocal(host);
  registerFleet(host);
}

/**
 * `--handshake-timeout`: whole seconds, 5 to 600, as milliseconds. It must not be shorter than the
 * server's own deadline (hostChannel.handshakeMs, 10 s by default): a host on a slow link would
 * give up on handshakes the server still waits for.
 */
export function handshakeTimeoutMs(v: string): number {
  return secondsMs('--handshake-timeout', v);
}

/**
 * `--ping-interval`: whole seconds, 5 to 600, as milliseconds. A dropped server is noticed within
 * three intervals; shorter ones only add pings (each end counts any byte received as an answer,
 * so a slow link carrying a large frame is not taken for a dead one).
 */
export function pingIntervalMs(v: string): number {
  return secondsMs('--ping-interval', v);
}

/**
 * `--unknown-grace`: whole minutes, 1 to 1440, as milliseconds. Long enough for an operator to put
 * right a server started on the wrong database before its fleet stops (host/agent/refusals.ts).
 */
export function unknownGraceMinutesMs(v: string): number {
  const n = /^\d{1,4}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 1440)) throw new CtError('USAGE', `--unknown-grace must be whole minutes from 1 to 1440, not ${JSON.stringify(v.slice(0, 32))}`, {});
  return n * 60_000;
}

function secondsMs(flag: string, v: string): number {
  const n = /^\d{1,3}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 5 && n <= 600)) throw new CtError('USAGE', `${flag} must be whole seconds from 5 to 600, not ${JSON.stringify(v.slice(0, 32))}`, {});
  return n * 1000;
}

/** host/local/commands.ts, restated: the library never imports host/ (not even its types). */
type Local = Record<'hostPs' | 'hostAction' | 'hostLogs' | 'hostFacts', (o: Record<string, unknown>, io: Record<string, unknown>) => Promise<number>>;

async function local(): Promise<Local> {
  return (await import(new URL('../../../host/local/commands.js', import.meta.url).href)) as Local;
}

const STATE_DIR = ['--state-dir <dir>', 'host state directory', parseStateDir, '/var/lib/cerro-torre'] as const;

/**
 * `ct host ps|stop|start|restart|kill|pause|resume|rm|logs`: the host's containers, acted on from
 * the host itself (its state directory), next to a running agent.
 */
function registerLocal(host: Command): void {
  host
    .command('facts')
    .description('print this machine\'s facts as the policies read them (JSON), for ct policy explain --host FILE')
    .requiredOption('--environment <env>', 'the environment the host would serve')
    .action(action(async (o: { environment: string }) => (await local()).hostFacts(o, processIo as unknown as Record<string, unknown>)));
  host
    .command('ps')
    .description('list this host\'s containers: state, health, restarts, exit code and reason')
    .option(...STATE_DIR)
    .option('--json', 'print JSON')
    .action(action(async (o: { stateDir: string; json?: boolean }) => (await local()).hostPs(o, processIo as unknown as Record<string, unknown>)));
  const simple: [string, string][] = [
    ['stop', 'stop a container (SIGTERM, grace period, SIGKILL); it stays stopped (held) until started'],
    ['start', 'start a stopped container (releases a hold)'],
    ['restart', 'stop, then start a container'],
    ['pause', 'freeze a running container (runc pause)'],
    ['resume', 'thaw a paused container'],
    ['rm', 'remove a container (killed first), its bundle and root filesystem'],
  ];
  for (const [name, description] of simple) {
    const cmd = host.command(name).description(description).argument('<container>', 'container id (ct host ps)').option(...STATE_DIR);
    if (name === 'stop' || name === 'restart') cmd.option('-t, --time <seconds>', 'grace period before SIGKILL (default: the manifest\'s stop_grace_period, else 10)');
    cmd.action(action(async (id: string, o: { stateDir: string; time?: string }) => (await local()).hostAction({
      stateDir: o.stateDir, id, action: name === 'rm' ? 'remove' : name, ...(o.time !== undefined ? { graceSeconds: Number(o.time) } : {}),
    }, processIo as unknown as Record<string, unknown>)));
  }
  host
    .command('kill')
    .description('send a signal to a container\'s init (TERM, KILL, INT, HUP, QUIT, USR1, USR2)')
    .argument('<container>', 'container id')
    .option('-s, --signal <signal>', 'signal', 'KILL')
    .option(...STATE_DIR)
    .action(action(async (id: string, o: { stateDir: string; signal: string }) => (await local()).hostAction({ stateDir: o.stateDir, id, action: 'kill', signal: o.signal }, processIo as unknown as Record<string, unknown>)));
  host
    .command('logs')
    .description('a container\'s output: stdout to stdout, stderr to stderr, in time order')
    .argument('<container>', 'container id')
    .option('-f, --follow', 'keep printing new lines until the container stops (or Ctrl-C)')
    .option('--tail <n>', 'start with the last N lines (a number, as docker logs), or the last bytes with a k/m suffix (64k)', '64k')
    .option('--stream <stream>', 'only stdout or stderr')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option(...STATE_DIR)
    .action(action(async (id: string, o: { stateDir: string; follow?: boolean; tail: string; stream?: string; timestamps?: boolean }) => {
      if (o.stream !== undefined && o.stream !== 'stdout' && o.stream !== 'stderr') throw new CtError('USAGE', '--stream must be stdout or stderr', {});
      // A plain number counts lines, as `docker logs --tail 10` does (it counted bytes: `--tail 10`
      // printed nothing); within 8 MiB of text, so that a huge N stays bounded.
      const lines = /^\d+$/.test(o.tail) ? Number(o.tail) : undefined;
      if (lines !== undefined && !Number.isSafeInteger(lines)) throw new CtError('USAGE', '--tail is too large', {});
      const tail = lines !== undefined ? { tail: 8 << 20, tailLines: lines } : { tail: parseSize(o.tail) };
      return (await local()).hostLogs({ stateDir: o.stateDir, id, follow: o.follow, ...tail, stream: o.stream, timestamps: o.timestamps }, {
        ...processIo,
        stdout: (t: string) => process.stdout.write(t),
        stderr: (t: string) => process.stderr.write(t),
        onSignal: (h: () => void) => {
          process.once('SIGINT', h);
          process.once('SIGTERM', h);
        },
      });
    }));
}
