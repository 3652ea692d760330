/**
 * The `twinwall` command line: check, explain and verify synthesized artefacts.
 *
 * Exit codes: cli/exit.ts (0 success, 1 a finding, 2 bad usage or unreadable input, 3 an
 * internal error).
 */
import { Command, CommanderError, Option } from 'commander';
import { CheckReport, Direction, HostArtefact, checkHost, checkStacks, explainFlow, formatReport, hasFindings, parseTraffic, readStack } from './lib-check';
import { TwinwallError } from '../lib/errors';
import { UsageError, loadStacks } from './artefacts';
import { registerDiff, registerLearn, registerReport } from './commands';
import { EXIT, EXIT_CODES_HELP, internalErrorText } from './exit';
import { terminalText } from '../lib/terminal';

export { EXIT } from './exit';

const DEFAULT_DIR = 'cdktf.out';

function selectHosts(report: CheckReport, names: readonly string[] | undefined): CheckReport {
  if (names === undefined || names.length === 0) return report;
  const hosts = report.hosts.filter((h) => names.some((n) => matchesHost(h, n)));
  if (hosts.length === 0) throw new UsageError(`no host matches ${names.join(', ')} (hosts: ${report.hosts.map((h) => h.label).join(', ')})`);
  return { ...report, hosts };
}

/**
 * What a host answers to: its twinwall host name, "stack/name", its resource address,
 * "stack/address", and the construct path of its resource ("production/web-instance").
 */
export function hostNames(h: HostArtefact): string[] {
  return [h.name, `${h.stack}/${h.name}`, h.address, `${h.stack}/${h.address}`, ...(h.path !== undefined ? [h.path] : [])];
}

/** A host is named by any of `hostNames`. */
export function matchesHost(h: CheckReport['hosts'][number], name: string): boolean {
  return hostNames(h.host).includes(name);
}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('twinwall')
    .description('One policy, two walls: prove that each host\'s security groups and its own iptables rules admit the same traffic (check, explain, verify), review changes (report, diff), and learn a policy from audit logs (learn), all from the synthesized artefacts (cdktf.out).')
    .configureOutput({ writeOut: io.out, writeErr: (t) => io.err(t.startsWith('error: ') ? `twinwall: ${t.slice(7).trimEnd()} (see twinwall --help)\n` : t) })
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .exitOverride();

  program
    .command('check')
    .description('Compare both walls of every host in the synthesized Terraform JSON, exactly and symbolically, reading the iptables tables as iptables-restore does, and check the host-only part of each table (DHCP, neighbour discovery, metadata, logging, audit mode, DROP policies) against the options recorded on its security group. Exit 0 when they agree, 1 on any disagreement or anything undecidable.')
    .argument('[dir]', 'cdktf synth output directory (or one stack directory, or a cdk.tf.json)', DEFAULT_DIR)
    .option('--host <name...>', 'only these hosts (name, stack/name, resource address or its construct path)')
    .option('--quiet', 'do not list the documented exceptions applied')
    .action((dir: string, opts: { host?: string[]; quiet?: boolean }) => {
      const report = selectHosts(checkStacks(loadStacks(dir)), opts.host);
      io.out(formatReport(report, { verbose: opts.quiet !== true }));
      setExit(hasFindings(report) ? EXIT.finding : EXIT.ok);
    });

  program
    .command('explain')
    .description('Show which rule on each wall admits or drops one flow: the security-group rule resources, and the path through the iptables chains (chain, rule number, comment). Exit 1 when the walls disagree on it.')
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
      const named = (h: HostArtefact) => hostNames(h).includes(host);
      const matches = hosts.filter(named);
      if (matches.length === 0) throw new UsageError(`no host ${JSON.stringify(host)} (hosts: ${hosts.map((h) => `${h.stack}/${h.name}`).join(', ')})`);
      if (matches.length > 1) throw new UsageError(`${JSON.stringify(host)} names ${matches.length} hosts (${matches.map((h) => `${h.stack}/${h.name}`).join(', ')}); write stack/host`);
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
    .description('Root, Linux: load each host\'s tables into a fresh pair of network namespaces, send real TCP and UDP packets (both directions, both families, boundary ports, CIDR edges, forged sources) and compare each kernel verdict with the security groups, after checking that the tables the kernel stored (iptables-save) mean what check read. Exit 1 on any disagreement.')
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
      // Refuse before reading anything: no root, no Linux or no tools is the first thing to say.
      const why = verifyPrerequisites();
      if (why !== undefined) {
        io.err(`twinwall verify: ${why}\n`);
        setExit(EXIT.usage);
        return;
      }
      const report = selectHosts(checkStacks(loadStacks(dir)), opts.host);
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
