/**
 * A proposal as TypeScript (ready to paste into a stack: one HostPolicy.compose per host), as
 * JSON (everything, evidence included) and as Markdown (for a pull request or a ticket). Pure.
 */
import { mdCode, mdFence, mdText } from '../markdown';
import { AgainstHost } from './against';
import { HostProposal, LearnedFlow, Proposal } from './propose';
import { Observed, ProblemTally } from './read';

export interface RenderOptions {
  /** Module the snippet imports twinwall from (default "twinwall", the package). */
  readonly importFrom?: string;
  /** Emit `{ audit: true }` so the proposal is first deployed in audit mode (default true). */
  readonly audit?: boolean;
}

const IMPORTABLE = ['Flow', 'HostPolicy', 'Peer', 'Port', 'customRole', 'dnsClient', 'dnsServer', 'mailServer', 'ntpClient', 'sshAdmin', 'webServer'];

const RESERVED = new Set(['break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'null', 'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with']);

/** A TypeScript identifier for a host's policy constant: "web-1" → "web1Policy". */
export function policyIdentifier(name: string): string {
  const parts = name.split(/[^A-Za-z0-9]+/).filter((p) => p !== '');
  const camel = parts.map((p, i) => (i === 0 ? p[0].toLowerCase() + p.slice(1) : p[0].toUpperCase() + p.slice(1))).join('');
  const id = /^[A-Za-z_$]/.test(camel) ? camel : `h${camel}`;
  return RESERVED.has(id) ? `${id}Host` : `${id}Policy`;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** One line of comment text: no line breaks, no comment terminators. */
function comment(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/\*\//g, '* /');
}

function hostCode(h: HostProposal, id: string, options: RenderOptions): string[] {
  const out: string[] = [];
  const flowsById = new Map(h.flows.map((f) => [f.id, f] as const));
  const describe = (ids: readonly string[]): string[] => ids.map((fid) => flowsById.get(fid)).filter((f): f is LearnedFlow => f !== undefined).map((f) => `    // ${comment(`${f.id}${f.service !== undefined ? ` (${f.service})` : ''}: ${count(f.evidence.flows, 'flow')}, ${count(f.evidence.packets, 'packet')}, ${count(f.evidence.distinctRemotes, 'remote address', 'remote addresses')}${f.remote.widened ? ' (blocks widened)' : ''}`)}`);
  const roleLines: string[] = [];
  for (const r of h.roles) {
    roleLines.push(...describe(r.covers));
    if (r.beyond !== undefined) roleLines.push(`    // ${comment(`${r.role} also ${r.beyond}.`)}`);
    roleLines.push(`    ${r.code},`);
  }
  if (h.custom.length > 0) {
    roleLines.push(`    customRole('learned', [`);
    for (const c of h.custom) {
      roleLines.push(`      // ${comment(c.comment)}`);
      roleLines.push(`      ${c.code},`);
    }
    roleLines.push(`    ]),`);
  }
  const flagged = h.flags.map((f) => `//   ${comment(`${f.kind}: ${f.message}`)}`);
  if (roleLines.length === 0) {
    out.push(`// ${comment(`host ${h.name}: nothing to propose (${h.flows.length} learned flows, none fit a rule).`)}`);
  } else {
    out.push(`/** ${comment(`${h.name}: learned from ${h.flows.length} observed flows; ${h.flags.length} flagged, not proposed.`)} */`);
    out.push(`export const ${id} = HostPolicy.compose(`);
    out.push(`  '${h.name}',`);
    out.push('  [');
    out.push(...roleLines);
    out.push('  ],');
    if (options.audit ?? true) out.push('  // Deploy in audit mode first; remove `audit` when the audit log stays quiet.', '  { audit: true },');
    out.push(');');
  }
  if (flagged.length > 0) out.push(`// ${comment(`${h.name}: flagged, not proposed:`)}`, ...flagged);
  for (const n of h.notes) out.push(`// ${comment(`${h.name}: ${n}`)}`);
  return out;
}

/** The TypeScript snippet: imports and one exported HostPolicy per host. */
export function renderTypeScript(proposal: Proposal, options: RenderOptions = {}): string {
  const used = new Set<string>();
  const ids = new Set<string>();
  const bodies: string[][] = [];
  for (const h of proposal.hosts) {
    let id = policyIdentifier(h.name);
    for (let i = 2; ids.has(id); i++) id = `${policyIdentifier(h.name)}${i}`;
    ids.add(id);
    bodies.push(hostCode(h, id, options));
  }
  const code = bodies.map((b) => b.join('\n')).join('\n\n');
  const stripped = code
    .split('\n')
    .filter((l) => !/^\s*(\/\/|\/\*\*)/.test(l))
    .join('\n')
    .replace(/'(?:[^'\\]|\\.)*'/g, "''");
  for (const name of IMPORTABLE) if (new RegExp(`\\b${name}\\b`).test(stripped)) used.add(name);
  const head = [
    '// Proposed by `twinwall learn`. Every flow below was observed; review each one before you enforce.',
    ...(used.size > 0 ? [`import { ${[...used].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)).join(', ')} } from '${options.importFrom ?? 'twinwall'}';`] : []),
  ];
  return `${head.join('\n')}\n\n${code}\n`;
}

function tallyJson(t: ProblemTally): object {
  return { count: t.count, reasons: t.reasons, first: t.first };
}

/** Everything as one JSON document. */
export function renderJson(observed: Observed, proposal: Proposal, against: readonly AgainstHost[] | undefined, options: RenderOptions = {}): string {
  const doc = {
    inputs: observed.inputs,
    problems: { malformed: tallyJson(observed.malformed), foreign: tallyJson(observed.foreign), unattributed: tallyJson(observed.unattributed), oversized: tallyJson(observed.oversized) },
    settings: proposal.settings,
    hosts: proposal.hosts.map((h) => ({ ...h, ...(against ? { against: against.find((a) => a.host === h.host || a.host === h.name) ?? null } : {}) })),
    ...(against ? { against } : {}),
    typescript: renderTypeScript(proposal, options),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function problems(title: string, t: ProblemTally): string[] {
  if (t.count === 0) return [];
  const out = [`**${title}: ${t.count}** (${mdText(Object.entries(t.reasons).map(([r, n]) => `${r}: ${n}`).join('; '))})`, ''];
  for (const p of t.first) out.push(`- ${mdText(`${p.source}:${p.line}:`)} ${mdText(p.why)} — ${mdCode(p.text)}`);
  if (t.count > t.first.length) out.push(`- … and ${t.count - t.first.length} more`);
  out.push('');
  return out;
}

/** A Markdown report: inputs, per host the learned flows, proposal, flags and notes, the snippet. */
export function renderMarkdown(observed: Observed, proposal: Proposal, against: readonly AgainstHost[] | undefined, options: RenderOptions = {}): string {
  const out: string[] = ['# twinwall learn', ''];
  out.push('| input | kind | lines | observations | foreign | malformed | skipped | unattributed |', '|---|---|---:|---:|---:|---:|---:|---:|');
  for (const i of observed.inputs) out.push(`| ${mdText(i.name)} | ${i.kind === 'kernel' ? 'kernel log' : i.kind === 'flow' ? 'flow log' : 'query result'} | ${i.lines} | ${i.observations} | ${i.foreign} | ${i.malformed} | ${i.skipped} | ${i.unattributed} |`);
  out.push('');
  out.push(
    ...problems('Malformed lines', observed.malformed),
    ...problems('Unattributed flow-log records', observed.unattributed),
    ...problems(`Lines longer than ${observed.maxLineBytes.toLocaleString('en-US')} bytes, skipped unread`, observed.oversized),
  );
  if (observed.foreign.count > 0) out.push(`Foreign lines (not twinwall's, ignored): ${observed.foreign.count} (${mdText(Object.entries(observed.foreign.reasons).map(([r, n]) => `${r}: ${n}`).join('; '))}).`, '');
  const s = proposal.settings;
  out.push(`Settings: widest prefix /${s.widestPrefix[4]} (IPv4), /${s.widestPrefix[6]} (IPv6); at most ${s.maxBlocks} blocks per peer list; a scan is ${s.scanThreshold}+ destinations on one port.`, '');
  for (const h of proposal.hosts) {
    out.push(`## ${mdText(h.name)}${h.name !== h.host ? ` (${mdText(h.host)})` : ''}`, '');
    if (h.flags.length > 0) {
      out.push('### Flagged — not proposed', '');
      for (const f of h.flags) {
        out.push(`- **${mdText(f.kind)}**: ${mdText(f.message)}`);
        for (const smp of f.evidence.samples) out.push(`  - ${mdText(`${smp.source}:${smp.line}:`)} ${mdCode(smp.text)}`);
      }
      out.push('');
    }
    out.push('### Learned flows', '', '| flow | service | remote | flows | packets | first | last | became |', '|---|---|---|---:|---:|---|---|---|');
    for (const f of h.flows) {
      const remote = f.remote.anywhere.length > 0 ? `any (${f.remote.cidrs.length} blocks seen)` : f.remote.cidrs.length > 4 ? `${f.remote.cidrs.slice(0, 4).join(', ')} … (${f.remote.cidrs.length} blocks)` : f.remote.cidrs.join(', ');
      const when = (a: LearnedFlow['evidence']['first']): string => a.time ?? `${a.source}:${a.line}`;
      out.push(`| ${mdText(f.id)} | ${mdText(f.service ?? '')} | ${mdText(remote)}${f.remote.widened ? ' (widened)' : ''} | ${f.evidence.flows} | ${f.evidence.packets} | ${mdText(when(f.evidence.first))} | ${mdText(when(f.evidence.last))} | ${mdText(`${f.disposition}${f.role !== undefined ? ` (${f.role})` : ''}`)} |`);
    }
    out.push('');
    if (h.notes.length > 0) {
      out.push('### Notes', '');
      for (const n of h.notes) out.push(`- ${mdText(n)}`);
      out.push('');
    }
    for (const a of (against ?? []).filter((x) => x.host === h.host || x.host === h.name)) out.push(...againstMarkdown(a));
  }
  const silent = (against ?? []).filter((a) => !proposal.hosts.some((h) => h.host === a.host || h.name === a.host));
  if (silent.length > 0) out.push(`Hosts in the artefact that no log line mentions: ${silent.map((a) => mdText(a.artefact)).join(', ')}.`, '');
  out.push('## Proposal', '', mdFence('ts', renderTypeScript(proposal, options).trimEnd()), '');
  return `${out.join('\n')}\n`;
}

const WALL_WORDS: Record<AgainstHost['blocked'][number]['wall'], string> = {
  'both walls': 'neither wall admits',
  'host wall': 'the host wall does not admit',
  'network wall': 'the network wall does not admit',
};

function againstMarkdown(a: AgainstHost): string[] {
  const out = [`### Against ${mdText(a.artefact)}`, ''];
  if (a.notObserved === undefined) {
    for (const c of a.caveats) out.push(`${mdText(c)}`, '');
    return out;
  }
  out.push(`**Observed but not allowed** (would break when enforced): ${a.blocked.length === 0 ? 'none.' : ''}`, '');
  for (const b of a.blocked) {
    const sample = b.evidence.samples[0];
    out.push(`- ${mdText(b.flow)}: ${WALL_WORDS[b.wall]} ${mdText(b.remotes)} (${b.evidence.flows} flow${b.evidence.flows === 1 ? '' : 's'}${sample ? `; e.g. ${mdText(`${sample.source}:${sample.line}`)}` : ''})`);
  }
  if (a.blocked.length > 0) out.push('');
  out.push(`**Allowed but never observed** (candidates to remove): ${a.notObserved.length === 0 ? 'none.' : ''}`, '');
  for (const r of a.notObserved) out.push(`- ${mdText(r.wall)}: ${mdText(r.rule)}`);
  if (a.notObserved.length > 0) out.push('');
  for (const c of a.caveats) out.push(`> ${mdText(c)}`, '');
  return out;
}
