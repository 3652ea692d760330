/**
 * Reading inputs: each input is an (async) iterable of lines, consumed once, line by line, into
 * the aggregator. Nothing is kept per line except bounded samples of problems, so memory stays
 * flat however long the input is.
 */
import { Cidr } from '../address';
import { TwinwallError } from '../errors';
import { AggregateOptions, Aggregator } from './aggregate';
import { FlowLogReader } from './flow-log';
import { KernelLineContext, parseKernelLine } from './kernel-log';
import { AddressReader, LineRef, LineResult } from './observation';

export type InputKind = 'kernel' | 'flow';

export interface LearnInput {
  /** Name for reports and evidence: the file name, or "-" for stdin. */
  readonly name: string;
  readonly kind: InputKind;
  /** The input line by line … */
  readonly lines?: AsyncIterable<string> | Iterable<string>;
  /** … or as text chunks split anywhere (a file stream read as UTF-8): one await per chunk, not per line. */
  readonly chunks?: AsyncIterable<string>;
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
}

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
  readonly flows: Aggregator;
}

function tally(): ProblemTally {
  return { count: 0, first: [], reasons: {} };
}

function note(t: ProblemTally, ref: Omit<LineRef, 'text'> & { text: string }, why: string, keep: number): void {
  t.count++;
  t.reasons[why] = (t.reasons[why] ?? 0) + 1;
  if (t.first.length < keep) t.first.push({ source: ref.source, line: ref.line, why, text: ref.text.length > 300 ? `${ref.text.slice(0, 297)}...` : ref.text });
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
  const observed: Observed = { inputs: [], malformed: tally(), foreign: tally(), unattributed: tally(), flows: aggregator };
  const defaultHost = options.defaultHost ?? 'host';

  for (const input of inputs) {
    const summary: InputSummary = { name: input.name, kind: input.kind, lines: 0, observations: 0, foreign: 0, malformed: 0, skipped: 0, unattributed: 0 };
    (observed.inputs as InputSummary[]).push(summary);
    const flowReader =
      input.kind === 'flow'
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
    const handle = (result: LineResult | { kind: 'held' }, ref: { source: string; line: number; text: string }): void => {
      switch (result.kind) {
        case 'observation':
          summary.observations++;
          aggregator.add(result.observation);
          break;
        case 'foreign':
          summary.foreign++;
          note(observed.foreign, ref, result.why, keep);
          break;
        case 'malformed':
          summary.malformed++;
          note(observed.malformed, ref, result.why, keep);
          break;
        case 'skipped':
          summary.skipped++;
          break;
        case 'held':
          break;
      }
    };
    const flowEvents = (events: ReturnType<FlowLogReader['finish']>): void => {
      for (const e of events) {
        if (e.kind === 'observation') {
          summary.observations++;
          aggregator.add(e.observation);
        } else {
          summary.unattributed++;
          note(observed.unattributed, e.ref, e.why, keep);
        }
      }
    };
    let n = 0;
    // One context per input, its line number updated as lines go by (no object per line).
    const kctx: { -readonly [K in keyof KernelLineContext]: KernelLineContext[K] } = { source: input.name, line: 0, defaultHost, addresses, ...(input.host !== undefined ? { forceHost: input.host } : {}) };
    const one = (raw: string): void => {
      n++;
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      let result: LineResult | { kind: 'held' };
      if (flowReader) {
        const pushed = flowReader.push(text, n);
        result = pushed.result;
        if (pushed.events.length > 0) flowEvents(pushed.events);
      } else {
        kctx.line = n;
        result = parseKernelLine(text, kctx);
      }
      if (result.kind === 'observation') {
        summary.observations++;
        aggregator.add(result.observation);
      } else handle(result, { source: input.name, line: n, text });
    };
    if (input.chunks !== undefined) {
      let rest = '';
      for await (const chunk of input.chunks) {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() as string;
        for (const part of parts) one(part);
      }
      if (rest !== '') one(rest);
    } else if (input.lines !== undefined && Symbol.iterator in input.lines) {
      for (const raw of input.lines as Iterable<string>) one(raw);
    } else if (input.lines !== undefined) {
      for await (const raw of input.lines) one(raw);
    }
    if (flowReader) flowEvents(flowReader.finish());
    summary.lines = n;
  }
  return observed;
}
