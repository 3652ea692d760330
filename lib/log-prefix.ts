/**
 * The LOG prefix of the host wall's log-and-drop chains: `twinwall <direction> <verdict>[ <reason>]: `.
 * This module writes it (lib/render, both backends) and reads it (`twinwall learn` from kernel
 * logs, `twinwall report` for audit mode), so the format has one owner.
 */
import type { Direction } from './flow';

/** The kernel keeps at most 29 characters of a LOG prefix. */
export const LOG_PREFIX_MAX = 29;

/** What a log-and-drop chain does: drop (enforcing) or accept (audit mode); its LOG prefix says which. */
export type Verdict = 'drop' | 'audit';
/** Why a packet reached a log-and-drop chain, as its LOG prefix says it (none: no rule admitted it). */
export type VerdictReason = 'inv' | 'spoof' | 'imds';
/** The directions a LOG prefix names. */
export type LogDirection = Direction | 'forward';

/** The word every prefix starts with, and the space after it. */
export const LOG_PREFIX_LEAD = 'twinwall ';
export const LOG_DIRECTIONS: readonly LogDirection[] = ['ingress', 'egress', 'forward'];
export const VERDICT_REASONS: readonly VerdictReason[] = ['inv', 'spoof', 'imds'];

/** LOG prefix: `twinwall <direction> <drop|audit>[ <reason>]: `, always ≤ 29 characters. */
export function logPrefix(direction: LogDirection, verdict: Verdict, reason?: VerdictReason): string {
  const prefix = `${LOG_PREFIX_LEAD}${direction} ${verdict}${reason === undefined ? '' : ` ${reason}`}: `;
  if (prefix.length > LOG_PREFIX_MAX) throw new RangeError(`LOG prefix ${JSON.stringify(prefix)} is longer than ${LOG_PREFIX_MAX} characters`);
  return prefix;
}

/** A LOG prefix read back. `verdict` is any lower-case word (a newer twinwall may add one); `reason` one of VERDICT_REASONS. */
export interface ParsedLogPrefix {
  readonly direction: LogDirection;
  readonly verdict: string;
  readonly reason?: VerdictReason;
}

const PREFIX = new RegExp(`^${LOG_PREFIX_LEAD}(${LOG_DIRECTIONS.join('|')}) ([a-z]+)(?: ([a-z]+))?: `);

/**
 * Read the LOG prefix at the start of `text` (the trailing ": " included): undefined when
 * `text` does not start with one, `{ unknownReason }` when it names a reason this version does not know.
 */
export function parseLogPrefix(text: string): ParsedLogPrefix | { readonly unknownReason: string } | undefined {
  const m = PREFIX.exec(text);
  if (m === null) return undefined;
  if (m[3] === undefined) return { direction: m[1] as LogDirection, verdict: m[2] };
  if (!(VERDICT_REASONS as readonly string[]).includes(m[3])) return { unknownReason: m[3] };
  return { direction: m[1] as LogDirection, verdict: m[2], reason: m[3] as VerdictReason };
}
