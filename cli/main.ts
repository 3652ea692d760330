/**
 * The `twinwall` command line: check, explain and verify synthesized artefacts.
 *
 * Exit codes: cli/exit.ts (0 success, 1 a finding, 2 bad usage or unreadable input, 3 an
 * internal error).
 */
import { Command, CommanderError, Option } from 'commander';
import { CheckReport, CheckReportWriter, Direction, FleetPlan, HostArtefact, PackedPlan, checkHost, explainFlow, hostLabel, namesHost, parseTraffic, planFleet, readStack } from './lib-check';
import { CheckPool, MIN_HOSTS_PER_WORKER, checkOnWorkers, expectedWorkers, startCheckWorker, workerCount } from './check-workers';
import { TwinwallError } from '../lib/errors';
import { StackFile, UsageError, loadStacks, readStacksLazily, stackFiles } from './artefacts';
import { registerDiff, registerLearn, registerReport } from './commands';
import { EXIT, EXIT_CODES_HELP, internalErrorText } from './exit';
import { terminalText } from '../lib/terminal';

export { EXIT } from './exit';

const DEFAULT_DIR = 'cdktf.out';

function noHostMatches(names: readonly string[], labels: readonly string[]): UsageError {
  return new UsageError(`no host matches ${names.join(', ')} (hosts: ${labels.join(', ')})`);
}

/** The planned hosts named by `names` (all of them when there are no names). */
function selectHosts(plan: FleetPlan, names: readonly string[] | undefined): FleetPlan {
  if (names === undefined || names.length === 0) return plan;
  const hosts = plan.hosts.filter((h) => names.some((n) => namesHost(h, n)));
  if (hosts.length === 0) throw noHostMatches(names, plan.hosts.map(hostLabel));
  return { ...plan, hosts };
}

/**
 * `check`'s plan: every stack read, parsed, planned and packed in turn, so one stack's parsed
 * input is alive at a time and then only the packed hosts (lib/check/fleet.ts); with `names`,
 * only the hosts they name.
 */
export function packedPlan(files: readonly StackFile[], names?: readonly string[]): PackedPlan {
  if (names === undefined || names.length === 0) return PackedPlan.plan(readStacksLazily(files));
  const labels: string[] = [];
  const select = (h: HostArtefact) => {
    labels.push(hostLabel(h));
    return names.some((n) => namesHost(h, n));
  };
  const plan = PackedPlan.plan(readStacksLazily(files), select);
  if (plan.size === 0) throw noHostMatches(names, labels);
  return plan;
}

/** `--workers`: a whole number of worker threads, at least 1. */
function workersOption(v: string): number {
  if (!/^[1-9]\d{0,3}$/.test(v)) throw new UsageError(`--workers ${v} must be a whole number of worker threads from 1 to 9999 (1: check in this process)`);
  return Number(v);
}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('twinwall')
    .description('One policy, two walls: prove that each host\'s security groups and its own netfilter rules (iptables or nftables) admit the same traffic (check, explain, verify), review changes (report, diff), and learn a policy from audit logs (learn), all from the synthesized artefacts (cdktf.out).')
    .configureOutput({ writeOut: io.out, writeErr: (t) => io.err(t.startsWith('error: ') ? `twinwall: ${t.slice(7).trimEnd()} (see twinwall --help)\n` : t) })
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .exitOverride();

  program
    .command('check')
    .description('Compare both walls of every host in the synthesized Terraform JSON, exactly and symbolically, reading the iptables tables as iptables-restore does (or the nftables wall, table inet twinwall, statement by statement into the same model; what it cannot read exactly is a finding), and check the host-only part of each table (DHCP, neighbour discovery, metadata, logging, audit mode, DROP policies) against the options recorded on its security group. Exit 0 when they agree, 1 on any disagreement or anything undecidable.')
    .argument('[dir]', 'cdktf synth output directory (or one stack directory, or a cdk.tf.json)', DEFAULT_DIR)
    .option('--host <name...>', 'only these hosts (name, stack/name, resource address or its construct path)')
    .option('--quiet', 'do not list the documented exceptions applied')
    .addOption(new Option('--workers <n>', `check on n worker threads, the hosts split between them, the output in the same order (1: in this process). Default: one per core, but in this process below ${MIN_HOSTS_PER_WORKER} hosts per worker`).argParser(workersOption))
    .action(async (dir: string, opts: { host?: string[]; quiet?: boolean; workers?: number }) => {
      // One host at a time, each written as soon as it (and every host before it) is judged,
      // nothing kept but counts (lib/check/fleet.ts): memory stays flat however large the fleet.
      // The workers start before the input is read when it is large enough to want them, so
      // that their start-up overlaps the reading (the count is settled once the hosts are known).
      const files = stackFiles(dir);
      const early = expectedWorkers(opts.workers, files);
      const pool = early > 1 ? CheckPool.start(early) : undefined;
      try {
        const plan = packedPlan(files, opts.host);
        const writer = new CheckReportWriter(plan.problems, io.out, { verbose: opts.quiet !== true });
        await checkOnWorkers(plan, workerCount(opts.workers, plan.size), (verdict) => writer.host(verdict), pool ?? startCheckWorker);
        setExit(writer.end() ? EXIT.finding : EXIT.ok);
      } finally {
        await pool?.close();
      }
    });

  program
    .command('explain')
    .description('Show which rule on each wall admits or drops one flow: the security-group rule resources, and the path through the host wall\'s chains (chain, rule number, comment; an nftables wall\'s base chains input and output are INPUT and OUTPUT, rules numbered as in the file). Exit 1 when the walls disagree on it.')
    .argument('<args...>', '[DIR] HOST DIRECTION PROTO/PORT ADDRESS, e.g. `sample egress tcp/25 198.51.100.7` or `cdktf.out staging/web ingress tcp/443 2001:db8::1`; HOST is the twinwall host name (stack/name), the resource address (aws_instance.…) or its construct path')
    .addOption(new Option('--uid <uid>', 'the sending user, for egress (default: every user)').argParser((v) => {
      if (!/^\d+$/.test(v)) throw new UsageError(`--uid ${v} is not a number`);
      return Number(v);
    }))
    .addHelpText('after', '\nDIRECTION is ingress or egress. PROTO/PORT is tcp/25, udp/53, icmp/8, icmp/3/4, icmpv6/128 or a protocol number (47).')
    .action((args: string[], opts: { uid?: number }) => {
      if (args.length !== 4 && args.length !== 5) throw new UsageError(`explain takes [DIR] HOST DIRECTION PROTO/PORT ADDRESS (got ${args.length} argument${args.length === 1 ? '' : 's'})`);
      const [dir, host, direction, traffic, address] = args.length === 5 ? args : [DEFAULT_DIR, ...args];
      if (direction !== 'ingress' && direction !== 'egress') throw new UsageError(`direction ${JSON.stringify(direction)} must be ingress or egress`);
      let parsed: { protocol: number; point: number };
      try {
        parsed = parseTraffic(traffic);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      // Only the named host is modelled.
      const hosts = loadStacks(dir).flatMap((s) => readStack(s.name, s.json));
      const matches = hosts.filter((h) => namesHost(h, host));
      if (matches.length === 0) throw new UsageError(`no host ${JSON.stringify(host)} (hosts: ${hosts.map(hostLabel).join(', ')})`);
      if (matches.length > 1) throw new UsageError(`${JSON.stringify(host)} names ${matches.length} hosts (${matches.map(hostLabel).join(', ')}); write stack/host`);
      let result;
      try {
        result = explainFlow(checkHost(matches[0]), { direction: direction as Direction, ...parsed, address, ...(opts.uid !== undefined ? { uid: opts.uid } : {}) });
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      io.out(`${result.lines.join('\n')}\n`);
      setExit(result.disagree ? EXIT.finding : EXIT.ok);
    });

  program
    .command('verify')
    .description('Root, Linux: load each host\'s tables into a fresh pair of network namespaces, send real TCP and UDP packets (both directions, both families, boundary ports, CIDR edges, forged sources) and compare each kernel verdict with the security groups, after checking that what the kernel stored (each fallback, loaded first as at boot, then the tables over it: iptables-save, or nft -n list table inet twinwall) means what check read. Exit 1 on any disagreement.')
    .argument('[dir]', 'cdktf synth output directory (or one stack directory, or a cdk.tf.json)', DEFAULT_DIR)
    .option('--host <name...>', 'only these hosts (name, stack/name, resource address or its construct path)')
    .addOption(new Option('--timeout-ms <ms>', 'how long a probe waits for an answer').default(600).argParser((v) => {
      if (!/^\d+$/.test(v) || Number(v) < 50) throw new UsageError(`--timeout-ms ${v} must be a number of milliseconds (at least 50)`);
      return Number(v);
    }))
    .option('--verbose', 'print every probe, not only the disagreements')
    .action(async (dir: string, opts: { host?: string[]; timeoutMs: number; verbose?: boolean }) => {
      // Loaded lazily: check and explain never need the namespace harness.
      const { runVerify, verifyPrerequisites } = await import('./verify');
      // Refuse before reading anything: no root, no Linux or no tools is the first thing to say
      // (the backend's own tools, iptables-restore or nft, once the hosts are read).
      const why = verifyPrerequisites({ iptables: false, nftables: false });
      if (why !== undefined) {
        io.err(`twinwall verify: ${why}\n`);
        setExit(EXIT.usage);
        return;
      }
      const plan = selectHosts(planFleet(loadStacks(dir)), opts.host);
      const report: CheckReport = { hosts: plan.hosts.map((h) => checkHost(h)), problems: plan.problems };
      const code = await runVerify(report, { timeoutMs: opts.timeoutMs, verbose: opts.verbose === true, out: io.out, err: io.err });
      setExit(code);
    });

  registerReport(program, { ...io, setExit });
  registerDiff(program, { ...io, setExit });
  registerLearn(program, { out: io.out, err: io.err, setExit });
  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: readonly string[], raw: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  // Everything printed passes here: names, tags, comments and log lines from the artefacts may
  // carry ESC sequences, carriage returns or bidi overrides, shown as visible escapes instead.
  const io: Io = { out: (s) => raw.out(terminalText(s)), err: (s) => raw.err(terminalText(s)) };
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    io.out(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "errors" are successes; everything else is bad usage.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      io.err(`twinwall: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof TwinwallError) {
      // Invalid input found by the core (a log, a flag value): the user's to fix, not a bug.
      io.err(`twinwall: ${e.message.replace(/\s+/g, ' ')}\n`);
      return EXIT.usage;
    }
    io.err(internalErrorText(e));
    return EXIT.internal;
  }
}

/** What bin/twinwall.js calls: run, set the exit code, and turn anything that escapes into exit 3. */
export function run(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(terminalText(internalErrorText(e)));
      process.exitCode = EXIT.internal;
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
