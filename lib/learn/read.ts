/**
 * Reading inputs: each input is bytes in chunks (a file, stdin) or an (async) iterable of lines,
 * consumed once, line by line, into the aggregator. A line is parsed where it lies in the chunk
 * into one reused record; nothing is kept per line except bounded samples of problems, so memory
 * stays flat however long the input is, and time is linear in it.
 */
import { Cidr } from '../address';
import { TwinwallError } from '../errors';
import { AggregateOptions, Aggregator } from './aggregate';
import { FlowLogReader } from './flow-log';
import { KernelLogReader } from './kernel-log';
import { LineSplitter } from './lines';
import { QueryResultReader } from './query';
import { utf8 } from './bytes';
import { AddressReader, LINE, LineReader, LineRecord } from './observation';

/** Kernel LOG lines, VPC Flow Logs records, or the CSV result of a query `learn --query` wrote. */
export type InputKind = 'kernel' | 'flow' | 'query';

export interface LearnInput {
  /** Name for reports and evidence: the file name, or "-" for stdin. */
  readonly name: string;
  readonly kind: InputKind;
  /** The input line by line … */
  readonly lines?: AsyncIterable<string> | Iterable<string>;
  /** … or as bytes (UTF-8) in chunks split anywhere, as a file or stdin is read: one await per chunk, not per line. */
  readonly bytes?: AsyncIterable<Uint8Array | string>;
  /** Every line of this input belongs to this host (the input was given as HOST=FILE). */
  readonly host?: string;
  /** Flow logs only: the format string or header line, when the input has no header. */
  readonly flowLogFormat?: string;
}

export interface ReadOptions extends AggregateOptions {
  /** Host for lines that name none (dmesg output); default "host". */
  readonly defaultHost?: string;
  /** Rename hosts: OS hostname, instance id or interface id → twinwall host name. */
  readonly aliases?: Readonly<Record<string, string>>;
  /** The hosts' own addresses (flow logs without flow-direction), as CIDRs. */
  readonly localCidrs?: readonly string[];
  /** Problem lines kept per kind, with their text (default 20); all are counted. */
  readonly problemLines?: number;
  /** Flow logs: records held back per interface while its address is being inferred (default 4096). */
  readonly holdBack?: number;
  /** Longest line read, in bytes (default 65,536): a longer line is skipped unread and reported. */
  readonly maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 65536;

export interface LineProblem {
  readonly source: string;
  readonly line: number;
  readonly why: string;
  /** The line, cut to 300 characters. */
  readonly text: string;
}

/** Counted problems of one kind, with the first few lines. */
export interface ProblemTally {
  count: number;
  readonly first: LineProblem[];
  /** Count per reason. */
  readonly reasons: Record<string, number>;
}

export interface InputSummary {
  readonly name: string;
  readonly kind: InputKind;
  lines: number;
  observations: number;
  foreign: number;
  malformed: number;
  skipped: number;
  unattributed: number;
}

export interface Observed {
  readonly inputs: readonly InputSummary[];
  /** Lines that look like ours but cannot be read. */
  readonly malformed: ProblemTally;
  /** Lines that are not for learn (other kernel messages, journal markers). */
  readonly foreign: ProblemTally;
  /** Flow-log records whose host address could not be told. */
  readonly unattributed: ProblemTally;
  /** Lines longer than maxLineBytes: skipped unread (counted as skipped in their input). */
  readonly oversized: ProblemTally;
  /** The line cap they were held to. */
  readonly maxLineBytes: number;
  readonly flows: Aggregator;
}

function tally(): ProblemTally {
  return { count: 0, first: [], reasons: {} };
}

/** Distinct reasons kept per tally; the rest are counted together. */
const REASONS_KEPT = 64;
const OTHER_REASONS = '(other reasons)';

function note(t: ProblemTally, source: string, line: number, text: () => string, why: string, keep: number): void {
  t.count++;
  const reason = why in t.reasons || Object.keys(t.reasons).length < REASONS_KEPT ? why : OTHER_REASONS;
  t.reasons[reason] = (t.reasons[reason] ?? 0) + 1;
  if (t.first.length < keep) {
    const full = text();
    t.first.push({ source, line, why, text: full.length > 300 ? `${full.slice(0, 297)}...` : full });
  }
}

/**
 * Read every input into one aggregator. Throws only for unusable options (a flow-log format that
 * is not one, an unreadable --local CIDR); a bad line is counted, never thrown.
 */
export async function readInputs(inputs: readonly LearnInput[], options: ReadOptions = {}): Promise<Observed> {
  if (inputs.length === 0) {
    throw new TwinwallError('LEARN_NO_INPUT', {
      problem: 'learn was given no log to read.',
      fix: 'pass --from-kernel-log FILE (dmesg, journalctl -k or kern.log output; "-" for stdin) and/or --from-flow-logs FILE.',
    });
  }
  const keep = options.problemLines ?? 20;
  const localCidrs = (options.localCidrs ?? []).map((c) => Cidr.of(c));
  const aggregator = new Aggregator(options, new Map(Object.entries(options.aliases ?? {})));
  const addresses = new AddressReader();
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const observed: Observed = { inputs: [], malformed: tally(), foreign: tally(), unattributed: tally(), oversized: tally(), maxLineBytes, flows: aggregator };
  const defaultHost = options.defaultHost ?? 'host';

  const rec = new LineRecord();
  for (const input of inputs) {
    const summary: InputSummary = { name: input.name, kind: input.kind, lines: 0, observations: 0, foreign: 0, malformed: 0, skipped: 0, unattributed: 0 };
    (observed.inputs as InputSummary[]).push(summary);
    const flowReader =
      input.kind !== 'kernel'
        ? new FlowLogReader({
            source: input.name,
            defaultHost,
            ...(input.host !== undefined ? { forceHost: input.host } : {}),
            localCidrs,
            ...(input.flowLogFormat !== undefined ? { format: input.flowLogFormat } : {}),
            ...(options.holdBack !== undefined ? { holdBack: options.holdBack } : {}),
            addresses,
          })
        : undefined;
    flowReader?.onRelease({
      observation: (r) => {
        summary.observations++;
        aggregator.addRecord(r);
      },
      unattributed: (r, why) => {
        summary.unattributed++;
        note(observed.unattributed, r.source, r.line, () => r.text(), why, keep);
      },
    });
    const forceHost = input.host !== undefined ? { forceHost: input.host } : {};
    const reader: LineReader =
      input.kind === 'query' && flowReader
        ? new QueryResultReader(flowReader, { source: input.name, defaultHost, addresses, ...forceHost })
        : (flowReader ?? new KernelLogReader({ source: input.name, defaultHost, addresses, ...forceHost }));
    let n = 0;
    const text = (): string => rec.text();
    const line = (buf: Uint8Array, start: number, end: number): void => {
      n++;
      const kind = reader.read(buf, start, end > start && buf[end - 1] === 13 ? end - 1 : end, n, rec);
      switch (kind) {
        case LINE.observation:
          summary.observations++;
          aggregator.addRecord(rec);
          break;
        case LINE.foreign:
          summary.foreign++;
          note(observed.foreign, input.name, n, text, reader.why, keep);
          break;
        case LINE.malformed:
          summary.malformed++;
          note(observed.malformed, input.name, n, text, reader.why, keep);
          break;
        case LINE.skipped:
          summary.skipped++;
          break;
        default:
          break;
      }
    };
    const tooLong = (head: Uint8Array): void => {
      n++;
      summary.skipped++;
      const shown = utf8(head, 0, head.length);
      note(observed.oversized, input.name, n, () => `${shown.slice(0, 297)}...`, `longer than ${maxLineBytes.toLocaleString('en-US')} bytes`, keep);
    };
    if (input.bytes !== undefined) {
      const splitter = new LineSplitter(maxLineBytes, line, tooLong);
      for await (const chunk of input.bytes) splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      splitter.end();
    } else if (input.lines !== undefined) {
      const one = (raw: string): void => {
        const buf = Buffer.from(raw, 'utf8');
        if (buf.length > maxLineBytes) tooLong(buf.subarray(0, 1200));
        else line(buf, 0, buf.length);
      };
      if (Symbol.iterator in input.lines) for (const raw of input.lines as Iterable<string>) one(raw);
      else for await (const raw of input.lines) one(raw);
    }
    flowReader?.release();
    summary.lines = n;
  }
  return observed;
}
