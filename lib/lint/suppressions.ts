/**
 * Suppressions: a host may silence a lint finding only by writing down why. The reason travels
 * with the host into the artefacts (a tag on its security group, `twinwall:lint:TWL001`), so
 * `twinwall report` shows it next to the finding it silences, and changing it is an in-place tag
 * update, never a replacement.
 */
import { TwinwallError, show } from '../errors';
import { LINT_IDS, LINT_RULES, isLintId } from './catalog';
import { Suppression } from './model';
import { tagSafe } from '../text';

export interface SuppressionInput {
  readonly id: string;
  readonly reason: string;
}

/** The tag key prefix on the security group; the id follows ("twinwall:lint:TWL001"). */
export const SUPPRESSION_TAG_PREFIX = 'twinwall:lint:';

/** AWS tag values hold at most 256 characters. */

/** Validate suppressions: known ids, each once, each with a reason. Returns them sorted by id. */
export function checkSuppressions(input: readonly SuppressionInput[] | undefined): Suppression[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: input,
      problem: `suppressions ${show(input)} is not a list.`,
      fix: 'pass suppressions: [{ id: "TWL001", reason: "why this host needs it" }].',
    });
  }
  const seen = new Set<string>();
  const out: Suppression[] = [];
  for (const s of input) {
    const id: unknown = (s as { id?: unknown } | null)?.id;
    const reason: unknown = (s as { reason?: unknown } | null)?.reason;
    if (!isLintId(id)) {
      throw new TwinwallError('LINT_UNKNOWN_ID', {
        value: id,
        problem: `the suppression names ${show(id)}, which is not a twinwall lint id.`,
        fix: `use one of ${LINT_IDS.join(', ')} (docs/lint.md lists what each finds).`,
      });
    }
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new TwinwallError('LINT_SUPPRESSION_NO_REASON', {
        value: id,
        problem: `the suppression of ${id} (${LINT_RULES[id].name}) has no reason; a finding is only silenced with a written reason, which every report shows.`,
        fix: `write why this host needs it, e.g. { id: "${id}", reason: "bastion: admins connect from changing networks; MFA on sshd" }.`,
      });
    }
    if (seen.has(id)) {
      throw new TwinwallError('LINT_SUPPRESSION_DUPLICATE', {
        value: id,
        problem: `${id} is suppressed twice on this host.`,
        fix: 'keep one suppression per id and put every reason in it.',
      });
    }
    seen.add(id);
    out.push({ id, reason: reason.trim().replace(/\s+/g, ' ') });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The tags recording `suppressions` on the host's security group. */
export function suppressionTags(suppressions: readonly Suppression[]): Record<string, string> {
  return Object.fromEntries(suppressions.map((s) => [`${SUPPRESSION_TAG_PREFIX}${s.id}`, tagSafe(s.reason) || 'no reason given']));
}

/** Suppressions read back from security-group tags (unknown ids and empty reasons are ignored). */
export function suppressionsFromTags(tags: unknown): Suppression[] {
  if (tags === null || typeof tags !== 'object') return [];
  const out: Suppression[] = [];
  for (const [key, value] of Object.entries(tags as Record<string, unknown>)) {
    if (!key.startsWith(SUPPRESSION_TAG_PREFIX) || typeof value !== 'string' || value.trim() === '') continue;
    const id = key.slice(SUPPRESSION_TAG_PREFIX.length);
    if (isLintId(id)) out.push({ id, reason: value.trim() });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
