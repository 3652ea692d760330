/**
 * The one thing the checker needs that AWS itself does not record: the host-side CIDRs of a
 * security-group (or prefix-list) reference. The host wall cannot see groups, so the policy
 * declares which addresses stand for a referenced group (DESIGN "Policy semantics"); to check
 * the walls from the artefacts alone, that declaration must be in the artefacts too.
 *
 * Record: a tag on the rule resource that references the group (aws_vpc_security_group_
 * ingress_rule / _egress_rule support tags), key `twinwall:host-cidrs`, value the CIDRs separated
 * by single spaces. An AWS tag value holds at most 256 characters, so a longer list continues in
 * `twinwall:host-cidrs:2`, `:3` … (CIDRs use only characters AWS allows in tag values).
 *
 * Fallback for rule kinds without tags (aws_security_group_rule, inline blocks): the same tag on
 * the *referenced* aws_security_group, meaning "this group's members live in these CIDRs".
 */

export const HOST_CIDRS_TAG = 'twinwall:host-cidrs';
const TAG_VALUE_MAX = 256;

/** The tags recording `cidrs` (empty list → no tags). */
export function hostCidrsTags(cidrs: readonly string[]): Record<string, string> {
  const chunks: string[] = [];
  let cur = '';
  for (const c of cidrs) {
    if (c.length > TAG_VALUE_MAX) throw new RangeError(`${c} is longer than a tag value`);
    const next = cur === '' ? c : `${cur} ${c}`;
    if (next.length > TAG_VALUE_MAX) {
      chunks.push(cur);
      cur = c;
    } else cur = next;
  }
  if (cur !== '') chunks.push(cur);
  return Object.fromEntries(chunks.map((v, i) => [i === 0 ? HOST_CIDRS_TAG : `${HOST_CIDRS_TAG}:${i + 1}`, v]));
}

/** The CIDRs recorded in `tags`, or undefined when there is no record. */
export function readHostCidrsTags(tags: unknown): string[] | undefined {
  if (tags === null || typeof tags !== 'object') return undefined;
  const t = tags as Record<string, unknown>;
  if (typeof t[HOST_CIDRS_TAG] !== 'string') return undefined;
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const v = t[i === 1 ? HOST_CIDRS_TAG : `${HOST_CIDRS_TAG}:${i}`];
    if (typeof v !== 'string') break;
    out.push(...v.split(' ').filter((x) => x !== ''));
  }
  return out;
}
