/**
 * `twinwall learn`: audit-mode kernel LOG lines and VPC Flow Logs → observed flows per host →
 * a proposed policy (roles and custom flows, with evidence) and flags for what must not become a
 * rule. Pure: it consumes (async) iterables of lines and returns data; the CLI does the I/O.
 */
import { Proposal, ProposeOptions, propose } from './propose';
import { LearnInput, Observed, ReadOptions, readInputs } from './read';

export * from './observation';
export * from './kernel-log';
export * from './flow-log';
export * from './cover';
export * from './aggregate';
export * from './read';
export * from './propose';
export * from './render';
export * from './against';
export * from './query';

export type LearnOptions = ReadOptions & ProposeOptions;

export interface LearnResult {
  readonly observed: Observed;
  readonly proposal: Proposal;
}

/** Read the inputs (streaming) and propose a policy per host. */
export async function learn(inputs: readonly LearnInput[], options: LearnOptions = {}): Promise<LearnResult> {
  const observed = await readInputs(inputs, options);
  return { observed, proposal: propose(observed, options) };
}
