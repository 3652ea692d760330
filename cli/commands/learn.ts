/**
 * `twinwall learn`: read audit-mode kernel LOG lines and/or VPC Flow Logs, propose a policy per
 * host (roles, custom flows, evidence), flag what must not become a rule, and with --against
 * compare what was seen with what a synthesized app allows.
 *
 * Exit codes (as every twinwall command): 0 nothing to flag; 1 a finding (a flag, or with
 * --against traffic that would break when enforced); 2 bad usage or unreadable input.
 */
import * as fs from 'fs';
import { Command, Option } from 'commander';
import { TwinwallError } from '../../lib/errors';
import { checkStacks } from '../../lib/check';
import { Cidr } from '../../lib/address';
import { AgainstHost, DEFAULT_MAX_LINE_BYTES, LearnInput, athenaQuery, compareAgainst, learn, logsInsightsQuery, mailHosts, queryTime, renderJson, renderMarkdown, renderTypeScript } from '../../lib/learn';
import { UsageError, loadStacks } from '../artefacts';

export interface LearnIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly setExit: (code: number) => void;
  /** Standard input, for "-" (default process.stdin). */
  readonly stdin?: NodeJS.ReadableStream;
}

const defaultIo: LearnIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  setExit: (code) => {
    process.exitCode = code;
  },
};

interface LearnFlags {
  fromKernelLog: string[];
  fromFlowLogs: string[];
  fromQueryResult: string[];
  query?: 'athena' | 'logs-insights';
  table?: string;
  since?: string;
  until?: string;
  whereCidr: string[];
  flowLogFormat?: string;
  against?: string;
  format: 'ts' | 'json' | 'markdown';
  host?: string;
  alias: string[];
  local: string[];
  widestPrefix: number;
  widestPrefix6: number;
  maxBlocks: number;
  scanThreshold: number;
  samples: number;
  maxLineBytes: number;
  importFrom: string;
  audit: boolean;
  output?: string;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function integer(flag: string, min: number, max: number): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${flag} ${v} must be a whole number from ${min} to ${max}`);
    return Number(v);
  };
}

/** "FILE", "-" or "HOST=FILE" (a file that exists under the whole name is a file). */
function splitSource(spec: string): { host?: string; file: string } {
  const eq = spec.indexOf('=');
  if (eq > 0 && spec !== '-' && !fs.existsSync(spec) && NAME.test(spec.slice(0, eq))) return { host: spec.slice(0, eq), file: spec.slice(eq + 1) };
  return { file: spec };
}

/**
 * The bytes of a file or stdin, in chunks of up to 1 MiB (a file's chunks are one buffer, reused). The file is checked now (so a typo is
 * bad usage before anything is read) but opened only when read: inputs are read one after another,
 * and an early-opened stream would fill memory while it waits.
 */
function bytes(file: string, io: LearnIo): AsyncIterable<Uint8Array | string> {
  if (file !== '-') {
    try {
      const st = fs.statSync(file);
      if (st.isDirectory()) throw new UsageError(`${file} is a directory, not a log file`);
      fs.accessSync(file, fs.constants.R_OK);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return {
    async *[Symbol.asyncIterator]() {
      if (file === '-') {
        for await (const chunk of io.stdin ?? process.stdin) yield chunk as Uint8Array | string;
        return;
      }
      // One buffer, read into again and again: learn is done with a chunk before it asks for the next.
      const handle = await fs.promises.open(file, 'r');
      const buffer = Buffer.allocUnsafe(1 << 20);
      try {
        for (;;) {
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await handle.close();
      }
    },
  };
}

function write(text: string, output: string | undefined, io: LearnIo): void {
  if (output === undefined) {
    io.out(text);
    return;
  }
  try {
    fs.writeFileSync(output, text);
  } catch (e) {
    throw new UsageError(`cannot write ${output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function usage(e: unknown): never {
  if (e instanceof TwinwallError) throw new UsageError(`${e.code} ${e.errorName}: ${e.problem} ${e.fix}`.replace(/\s+/g, ' '));
  throw e;
}

/** Add `twinwall learn` to a program. */
export function registerLearn(program: Command, io: LearnIo = defaultIo): Command {
  return program
    .command('learn')
    .description(
      'Learn before you lock: read the kernel LOG lines of audit-mode hosts and/or VPC Flow Logs (files, or the CSV result of the query --query prints for Athena or CloudWatch Logs Insights, to aggregate a fleet\'s flow logs where they are), propose a policy per host (roles and custom flows, each with its evidence), and flag what must not become a rule (scans, SMTP from non-mail hosts, metadata access by non-root users, forged sources). Exit 1 when anything is flagged (or, with --against, when observed traffic would break).',
    )
    .addOption(new Option('--from-kernel-log <[host=]file>', 'kernel log: dmesg, journalctl -k, /var/log/kern.log or syslog output ("-" for stdin); repeatable').default([]).argParser(collect))
    .addOption(new Option('--from-flow-logs <[host=]file>', 'VPC Flow Logs records (default version-2 format, or the format of a header line); repeatable').default([]).argParser(collect))
    .addOption(new Option('--from-query-result <[host=]file>', 'the CSV result of the query --query prints, from Athena or Logs Insights; repeatable').default([]).argParser(collect))
    .option('--flow-log-format <format>', 'flow-log format for inputs without a header line (and of the log group, for --query logs-insights), e.g. "${version} ${interface-id} ${srcaddr} …"')
    .addOption(new Option('--query <engine>', 'print the aggregation as a query to run where the flow logs are, instead of reading logs: athena (Trino SQL over the table AWS documents for flow logs) or logs-insights (CloudWatch Logs Insights); read its CSV result with --from-query-result').choices(['athena', 'logs-insights']))
    .option('--table <name>', 'with --query athena: the flow-logs table (default vpc_flow_logs; [catalog.]database.table)')
    .option('--since <time>', 'with --query: records starting at or after this date (YYYY-MM-DD, UTC) or ISO 8601 time with a zone')
    .option('--until <time>', 'with --query: records starting before this date or time')
    .addOption(new Option('--where-cidr <cidr>', 'with --query: only records to or from this block; repeatable').default([]).argParser(collect))
    .option('--against <dir>', 'compare with the synthesized app (cdktf.out, a stack directory or a cdk.tf.json)')
    .addOption(new Option('--format <format>', 'output format').choices(['ts', 'json', 'markdown']).default('markdown'))
    .option('--host <name>', 'host name for lines that name none (dmesg output)')
    .addOption(new Option('--alias <from=to>', 'call a logged host name, instance id or interface id by its twinwall host name; repeatable').default([]).argParser(collect))
    .addOption(new Option('--local <cidr>', "a host's own address block, for flow logs without flow-direction; repeatable").default([]).argParser(collect))
    .addOption(new Option('--widest-prefix <n>', 'widest IPv4 prefix a learned address block may have').default(24).argParser(integer('--widest-prefix', 8, 32)))
    .addOption(new Option('--widest-prefix6 <n>', 'widest IPv6 prefix a learned address block may have').default(48).argParser(integer('--widest-prefix6', 16, 128)))
    .addOption(new Option('--max-blocks <n>', 'most address blocks per learned peer list').default(16).argParser(integer('--max-blocks', 1, 1000)))
    .addOption(new Option('--scan-threshold <n>', 'distinct destinations on one egress port that make it a scan').default(32).argParser(integer('--scan-threshold', 2, 1000000)))
    .addOption(new Option('--samples <n>', 'sample lines kept per flow as evidence').default(3).argParser(integer('--samples', 0, 100)))
    .addOption(new Option('--max-line-bytes <n>', 'longest line read; a longer one is skipped unread and listed in the report').default(DEFAULT_MAX_LINE_BYTES).argParser(integer('--max-line-bytes', 1024, 1 << 26)))
    .option('--import-from <module>', 'module the TypeScript proposal imports twinwall from', 'twinwall')
    .option('--no-audit', 'propose the policy without { audit: true }')
    .option('--output <file>', 'write the output to a file instead of stdout')
    .action(async (opts: LearnFlags) => {
      if (opts.query !== undefined) {
        if (opts.fromKernelLog.length + opts.fromFlowLogs.length + opts.fromQueryResult.length > 0) throw new UsageError('--query prints a query to run where the logs are; it reads no logs (drop the --from-… options)');
        if (opts.query === 'logs-insights' && opts.table !== undefined) throw new UsageError('--table names an Athena table; a Logs Insights query runs on the log groups you select');
        let text: string;
        try {
          const options = {
            ...(opts.table !== undefined ? { table: opts.table } : {}),
            ...(opts.since !== undefined ? { since: queryTime(opts.since, '--since') } : {}),
            ...(opts.until !== undefined ? { until: queryTime(opts.until, '--until') } : {}),
            cidrs: opts.whereCidr.map((c) => Cidr.of(c)),
            ...(opts.flowLogFormat !== undefined ? { format: opts.flowLogFormat } : {}),
          };
          text = opts.query === 'athena' ? athenaQuery(options) : logsInsightsQuery(options);
        } catch (e) {
          usage(e);
        }
        write(text, opts.output, io);
        io.err(`twinwall learn: ${opts.query === 'athena' ? 'Athena' : 'Logs Insights'} query written; run it, save the result as CSV, then: twinwall learn --from-query-result RESULT.csv\n`);
        io.setExit(0);
        return;
      }
      const queryOnly = [['--table', opts.table], ['--since', opts.since], ['--until', opts.until]].filter(([, v]) => v !== undefined).map(([f]) => f as string);
      if (opts.whereCidr.length > 0) queryOnly.push('--where-cidr');
      if (queryOnly.length > 0) throw new UsageError(`${queryOnly.join(', ')} ${queryOnly.length === 1 ? 'goes' : 'go'} with --query (they select records in the query, not in files learn reads)`);
      const inputs: LearnInput[] = [];
      const stdinUses = [...opts.fromKernelLog, ...opts.fromFlowLogs, ...opts.fromQueryResult].filter((s) => s === '-' || s.endsWith('=-')).length;
      if (stdinUses > 1) throw new UsageError('standard input ("-") can be read only once');
      for (const [kind, specs] of [
        ['kernel', opts.fromKernelLog],
        ['flow', opts.fromFlowLogs],
        ['query', opts.fromQueryResult],
      ] as const) {
        for (const spec of specs) {
          const { host, file } = splitSource(spec);
          inputs.push({ name: file === '-' ? '(stdin)' : file, kind, bytes: bytes(file, io), ...(host !== undefined ? { host } : {}), ...(kind === 'flow' && opts.flowLogFormat !== undefined ? { flowLogFormat: opts.flowLogFormat } : {}) });
        }
      }
      if (inputs.length === 0) throw new UsageError('give at least one --from-kernel-log FILE, --from-flow-logs FILE or --from-query-result FILE ("-" reads stdin), or --query athena|logs-insights');
      const aliases: Record<string, string> = {};
      for (const a of opts.alias) {
        const eq = a.indexOf('=');
        if (eq <= 0 || eq === a.length - 1) throw new UsageError(`--alias ${a} must be FROM=TO`);
        aliases[a.slice(0, eq)] = a.slice(eq + 1);
      }
      // Read the artefact first: a bad --against fails before a long log is read.
      const checks = opts.against !== undefined ? checkStacks(loadStacks(opts.against)).hosts : undefined;
      let result;
      try {
        result = await learn(inputs, {
          ...(opts.host !== undefined ? { defaultHost: opts.host } : {}),
          aliases,
          localCidrs: opts.local,
          widestPrefix: { 4: opts.widestPrefix, 6: opts.widestPrefix6 },
          maxBlocks: opts.maxBlocks,
          scanThreshold: opts.scanThreshold,
          samples: opts.samples,
          maxLineBytes: opts.maxLineBytes,
          ...(checks ? { mailHosts: mailHosts(checks) } : {}),
        });
      } catch (e) {
        usage(e);
      }
      const { observed, proposal } = result;
      let against: AgainstHost[] | undefined;
      if (checks) against = compareAgainst(proposal, checks, observed.flows);
      const render = { importFrom: opts.importFrom, audit: opts.audit };
      const text =
        opts.format === 'ts' ? renderTypeScript(proposal, render) : opts.format === 'json' ? renderJson(observed, proposal, against, render) : renderMarkdown(observed, proposal, against, render);
      write(text, opts.output, io);
      const flags = proposal.hosts.reduce((n, h) => n + h.flags.length, 0);
      const blocked = (against ?? []).reduce((n, a) => n + a.blocked.length, 0);
      const problems = observed.malformed.count + observed.unattributed.count;
      const long = observed.oversized.count;
      io.err(
        `twinwall learn: ${observed.inputs.reduce((n, i) => n + i.lines, 0)} lines, ${proposal.hosts.length} host${proposal.hosts.length === 1 ? '' : 's'}, ${flags} flagged${against ? `, ${blocked} observed but not allowed` : ''}${problems > 0 ? `, ${problems} line${problems === 1 ? '' : 's'} unreadable (listed in the report)` : ''}${long > 0 ? `, ${long} line${long === 1 ? '' : 's'} over ${observed.maxLineBytes} bytes skipped` : ''}\n`,
      );
      io.setExit(flags > 0 || blocked > 0 ? 1 : 0);
    });
}
