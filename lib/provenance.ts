/**
 * Provenance as text: why a rule exists (role, service, reason), written into every
 * security-group rule description and every netfilter rule comment, and read back from the
 * artefacts by lint, the report and the diff. This module writes both forms (lib/render) and
 * parses both (lib/lint, lib/report), so each format has one owner, as lib/log-prefix.ts is for
 * LOG prefixes. It also owns the lead of the comments on twinwall's own fixed rules
 * ("twinwall: loopback"), which carry no provenance.
 *
 * - description: "mailServer: smtp - delivering mail to other mail servers; webServer: http - serving web pages"
 * - comment:     "mailServer/smtp: delivering mail to other mail servers | webServer/http: serving web pages"
 *
 * Text that is in neither shape (a hand-written description) yields no provenance.
 */
import { SERVICE_NAMES } from './catalog';
import { Provenance, uniqueProvenance } from './policy';

/** The lead of every comment on twinwall's own fixed rules (loopback, replies, DHCP …). */
export const OWN_RULE_LEAD = 'twinwall: ';

/** The comment of one of twinwall's own fixed rules: "twinwall: loopback". */
export function ownRuleComment(what: string): string {
  return `${OWN_RULE_LEAD}${what}`;
}

/** What a comment says without the lead of twinwall's own rules (the comment itself when it has none). */
export function ownRuleWhat(comment: string): string {
  return comment.startsWith(OWN_RULE_LEAD) ? comment.slice(OWN_RULE_LEAD.length) : comment;
}

const DESCRIPTION_ENTRIES = '; ';
const COMMENT_ENTRIES = ' | ';

/**
 * A security-group rule description, before it is fitted to AWS (lib/text.ts `awsDescription`):
 * one "role: service - reason" entry per provenance, repeats written once.
 */
export function provenanceDescription(because: readonly Provenance[]): string {
  const parts = because.map((p) => (p.service !== undefined ? `${p.role}: ${p.service} - ${p.reason}` : `${p.role}: ${p.reason}`));
  return [...new Set(parts)].join(DESCRIPTION_ENTRIES);
}

/** A netfilter rule comment, before it is fitted to the backend: one "role/service: reason" entry per provenance. */
export function provenanceComment(because: readonly Provenance[]): string {
  return because.map((p) => `${p.role}${p.service === undefined ? '' : `/${p.service}`}: ${p.reason}`).join(COMMENT_ENTRIES);
}

const ROLE = /^([A-Za-z][A-Za-z0-9_-]{0,62}): (.*)$/;
const SERVICE_IN_DESCRIPTION = /^([a-z0-9-]+) - (.*)$/;
const ROLE_IN_COMMENT = /^([A-Za-z][A-Za-z0-9_-]{0,62})(?:\/([a-z0-9-]+))?: (.*)$/;

const KNOWN_SERVICES = new Set<string>(SERVICE_NAMES);

/** Provenance from a security-group rule description twinwall wrote; [] for anything else. */
export function provenanceFromDescription(description: string | undefined): Provenance[] {
  if (description === undefined || description.trim() === '') return [];
  const out: { role: string; service?: string; reason: string }[] = [];
  for (const part of description.split(DESCRIPTION_ENTRIES)) {
    const m = ROLE.exec(part);
    if (m === null) {
      if (out.length === 0) return []; // not twinwall's shape at all
      out[out.length - 1].reason += `${DESCRIPTION_ENTRIES}${part}`;
      continue;
    }
    const [, role, rest] = m;
    const s = SERVICE_IN_DESCRIPTION.exec(rest);
    if (s !== null && KNOWN_SERVICES.has(s[1])) out.push({ role, service: s[1], reason: s[2] });
    else out.push({ role, reason: rest });
  }
  return out.map((p) => (p.service === undefined ? { role: p.role, reason: p.reason.trim() } : { role: p.role, service: p.service, reason: p.reason.trim() }));
}

/** Provenance from a netfilter rule comment twinwall wrote; [] for its own fixed rules and anything else. */
export function provenanceFromComment(comment: string | undefined): Provenance[] {
  if (comment === undefined || comment.trim() === '' || comment.startsWith(OWN_RULE_LEAD)) return [];
  const out: Provenance[] = [];
  for (const part of comment.split(COMMENT_ENTRIES)) {
    const m = ROLE_IN_COMMENT.exec(part);
    if (m === null) return [];
    const [, role, service, reason] = m;
    out.push(service !== undefined ? { role, service, reason: reason.trim() } : { role, reason: reason.trim() });
  }
  return out;
}

/** For people: "mailServer (smtp): delivering mail …; webServer (http): serving web pages". */
export function formatProvenance(because: readonly Provenance[]): string {
  return because.map((p) => `${p.role}${p.service !== undefined ? ` (${p.service})` : ''}: ${p.reason}`).join('; ');
}

/** Merge provenance lists, dropping repeats, in canonical order. */
export function mergeProvenance(...lists: (readonly Provenance[])[]): Provenance[] {
  return uniqueProvenance(lists.flat());
}
