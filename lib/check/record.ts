/**
 * What the checker needs that AWS itself does not record, kept as tags in the artefacts. First,
 * the host-side CIDRs of a security-group (or prefix-list) reference. The host wall cannot see groups, so the policy
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

import { HostPolicyOptions, ResolvedHostPolicyOptions, resolveHostPolicyOptions } from '../policy';
import { HOST_FIREWALLS, HostFirewall } from '../render/index';
import { TAG_VALUE_MAX } from '../text';

export const HOST_CIDRS_TAG = 'twinwall:host-cidrs';

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

/**
 * The second record: what the host-only part of a host wall depends on — the host policy's
 * options (instance metadata mode, audit mode, and whatever the renderer's host-only rules
 * come to depend on). `twinwall check` renders the host-only part from it with the renderer
 * itself (renderHostOnlyPart) and compares the host's tables with that, so the checker needs
 * it from the artefacts.
 *
 * Record: the tag `twinwall:host-wall` on the host's (first) security group, value the options
 * as `key=value` pairs separated by single spaces, in key order: booleans true/false, lists
 * joined by "+" (AWS allows no comma in tag values), other values as they are ("audit=false instanceMetadata=root-only"). Every
 * option is written; reading refuses an unknown or missing key, and validates the values with
 * the policy's own validation (resolveHostPolicyOptions), so the record follows the options
 * without a second description of them.
 *
 * Beside the options, `hostFirewall`: the backend the host renders (`iptables` or `nftables`,
 * HOST_FIREWALLS), so `twinwall check` can refuse user-data whose wall is not the recorded one
 * (a host whose tables were swapped for the other backend's, or a record from another host).
 */
export const HOST_WALL_TAG = 'twinwall:host-wall';

/** Characters every AWS service allows in a tag value (and none that would break the encoding). */
const RECORD_VALUE = /^[A-Za-z0-9_.:/+\-@]*$/;

function encodeValue(key: string, value: unknown): string {
  const text = typeof value === 'boolean' ? String(value) : Array.isArray(value) ? value.map(String).join('+') : String(value);
  if (!RECORD_VALUE.test(text) || (Array.isArray(value) && value.some((v) => String(v).includes('+')))) {
    throw new RangeError(`host-wall record: ${key}=${JSON.stringify(text)} holds characters a tag value cannot carry`);
  }
  return text;
}

/** The record key of the backend (not a policy option: a rendering choice). */
const BACKEND_KEY = 'hostFirewall';

/** The tag recording a host's options and its host wall's backend. */
export function hostWallTags(options: ResolvedHostPolicyOptions, hostFirewall: HostFirewall): Record<string, string> {
  if (BACKEND_KEY in options) throw new RangeError(`host-wall record: ${BACKEND_KEY} is a policy option too`);
  const entries = Object.entries({ ...options, [BACKEND_KEY]: hostFirewall })
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${encodeValue(k, v)}`);
  const value = entries.join(' ');
  if (value.length > TAG_VALUE_MAX) throw new RangeError(`host-wall record ${JSON.stringify(value)} is longer than a tag value`);
  return { [HOST_WALL_TAG]: value };
}

export type HostWallRecord = { readonly options: ResolvedHostPolicyOptions; readonly hostFirewall: HostFirewall } | { readonly problem: string };

/** The options and the backend recorded in `tags`; undefined when there is no record. */
export function readHostWallTags(tags: unknown): HostWallRecord | undefined {
  if (tags === null || typeof tags !== 'object') return undefined;
  const value = (tags as Record<string, unknown>)[HOST_WALL_TAG];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return { problem: `tag ${HOST_WALL_TAG} is not text` };
  const defaults = resolveHostPolicyOptions({}) as unknown as Record<string, unknown>;
  const raw: Record<string, unknown> = {};
  let hostFirewall: HostFirewall | undefined;
  for (const pair of value.split(' ')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const text = eq < 0 ? '' : pair.slice(eq + 1);
    if (eq >= 0 && key === BACKEND_KEY) {
      if (hostFirewall !== undefined) return { problem: `tag ${HOST_WALL_TAG} records ${key} twice` };
      if (!(HOST_FIREWALLS as readonly string[]).includes(text)) return { problem: `tag ${HOST_WALL_TAG}: ${key}=${JSON.stringify(text)} is not a host-wall backend (${HOST_FIREWALLS.join(', ')})` };
      hostFirewall = text as HostFirewall;
      continue;
    }
    if (eq < 0 || !(key in defaults)) return { problem: `tag ${HOST_WALL_TAG} records ${JSON.stringify(pair)}, which is not an option this twinwall knows` };
    if (key in raw) return { problem: `tag ${HOST_WALL_TAG} records ${key} twice` };
    const kind = defaults[key];
    if (typeof kind === 'boolean') {
      if (text !== 'true' && text !== 'false') return { problem: `tag ${HOST_WALL_TAG}: ${key}=${JSON.stringify(text)} is not true or false` };
      raw[key] = text === 'true';
    } else if (Array.isArray(kind)) raw[key] = text === '' ? [] : text.split('+');
    else if (typeof kind === 'number') raw[key] = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : text;
    else raw[key] = text;
  }
  const missing = [...Object.keys(defaults).filter((k) => defaults[k] !== undefined && !(k in raw)), ...(hostFirewall === undefined ? [BACKEND_KEY] : [])];
  if (missing.length > 0) return { problem: `tag ${HOST_WALL_TAG} does not record ${missing.join(', ')}` };
  try {
    return { options: resolveHostPolicyOptions(raw as HostPolicyOptions), hostFirewall: hostFirewall as HostFirewall };
  } catch (e) {
    return { problem: `tag ${HOST_WALL_TAG}: ${(e as Error).message.split('\n')[0]}` };
  }
}
