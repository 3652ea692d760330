/**
 * Recover why a rule exists from the artefacts: twinwall writes the role, service and reason of
 * every rule into the security-group rule description ("mailServer: smtp - delivering mail to
 * other mail servers; webServer: http - serving web pages") and into the iptables comment
 * ("mailServer/smtp: delivering mail to other mail servers | webServer/http: serving web pages").
 * Text that is not in either shape (a hand-written description) yields no provenance.
 */
import { SERVICE_NAMES } from '../catalog';
import { Provenance, uniqueProvenance } from '../policy';

const ROLE = /^([A-Za-z][A-Za-z0-9_-]{0,62}): (.*)$/;
const SERVICE_IN_DESCRIPTION = /^([a-z0-9-]+) - (.*)$/;
const ROLE_IN_COMMENT = /^([A-Za-z][A-Za-z0-9_-]{0,62})(?:\/([a-z0-9-]+))?: (.*)$/;

const KNOWN_SERVICES = new Set<string>(SERVICE_NAMES);

/** Provenance from a security-group rule description twinwall wrote; [] for anything else. */
export function provenanceFromDescription(description: string | undefined): Provenance[] {
  if (description === undefined || description.trim() === '') return [];
  const out: { role: string; service?: string; reason: string }[] = [];
  for (const part of description.split('; ')) {
    const m = ROLE.exec(part);
    if (m === null) {
      if (out.length === 0) return []; // not twinwall's shape at all
      out[out.length - 1].reason += `; ${part}`;
      continue;
    }
    const [, role, rest] = m;
    const s = SERVICE_IN_DESCRIPTION.exec(rest);
    if (s !== null && KNOWN_SERVICES.has(s[1])) out.push({ role, service: s[1], reason: s[2] });
    else out.push({ role, reason: rest });
  }
  return out.map((p) => (p.service === undefined ? { role: p.role, reason: p.reason.trim() } : { role: p.role, service: p.service, reason: p.reason.trim() }));
}

/** Provenance from an iptables `--comment` twinwall wrote; [] for its own fixed rules and anything else. */
export function provenanceFromComment(comment: string | undefined): Provenance[] {
  if (comment === undefined || comment.trim() === '' || comment.startsWith('twinwall: ')) return [];
  const out: Provenance[] = [];
  for (const part of comment.split(' | ')) {
    const m = ROLE_IN_COMMENT.exec(part);
    if (m === null) return [];
    const [, role, service, reason] = m;
    out.push(service !== undefined ? { role, service, reason: reason.trim() } : { role, reason: reason.trim() });
  }
  return out;
}

/** "mailServer (smtp): delivering mail …; webServer (http): serving web pages". */
export function formatProvenance(because: readonly Provenance[]): string {
  return because.map((p) => `${p.role}${p.service !== undefined ? ` (${p.service})` : ''}: ${p.reason}`).join('; ');
}

/** Merge provenance lists, dropping repeats, in canonical order. */
export function mergeProvenance(...lists: (readonly Provenance[])[]): Provenance[] {
  return uniqueProvenance(lists.flat());
}
