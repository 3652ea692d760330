/** `twinwall report` as Markdown (a pull-request comment) and as JSON. */
import { LINT_RULES, LintId } from '../lint/catalog';
import { mdCode, mdTable, mdText } from '../markdown';
import { DEFAULT_MARKDOWN_BUDGET, fitSections } from './markdown';
import { stackDiagram } from './mermaid';
import { Diff, HostDiff } from './diff';
import { Report, ReportFinding, ReportHost } from './report';

const LEVEL_ICON: Record<string, string> = { error: '🛑 error', warning: '⚠️ warning', notice: 'ℹ️ notice' };

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function because(f: { because: readonly { role: string; service?: string; reason: string }[] }): string {
  if (f.because.length === 0) return '_no role (not written by twinwall)_';
  return f.because.map((p) => `${mdText(p.role)}: ${mdText(p.reason)}`).join('<br>');
}

function wall(w: { admits: boolean; rules: readonly string[] }): string {
  return w.admits ? '✅' : '—';
}

/**
 * The findings as a table: active errors, warnings and notices first, then suppressed ones. With
 * `maxChars`, rows stop before the table would outgrow it, and a last row counts the rest.
 */
export function findingsTable(findings: readonly (ReportFinding & { host: string })[], maxChars = Infinity): string {
  const order = { error: 0, warning: 1, notice: 2 } as const;
  const sorted = [...findings].sort(
    (a, b) => (a.suppressed !== undefined ? 1 : 0) - (b.suppressed !== undefined ? 1 : 0) || order[a.level] - order[b.level] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0),
  );
  // One row per check and host (and level, and suppression reason): its findings listed in the
  // row, so a host with six notices of one check is one row, not six.
  const groups = new Map<string, (ReportFinding & { host: string })[]>();
  for (const f of sorted) {
    const key = JSON.stringify([f.suppressed !== undefined, f.level, f.id, f.host, f.suppressed?.reason ?? '']);
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const rows = [...groups.values()].map((group) => {
    const f = group[0];
    const messages = [...new Set(group.map((g) => mdText(g.message)))];
    return [
      f.suppressed !== undefined ? `~~${f.level}~~ suppressed` : LEVEL_ICON[f.level],
      `${mdCode(f.id)} ${mdText(f.name)}`,
      mdText(f.host),
      messages.length === 1 ? messages[0] : messages.map((m) => `• ${m}`).join('<br>'),
      f.suppressed !== undefined ? `**reason:** ${mdText(f.suppressed.reason)}` : mdText(f.fix),
    ];
  });
  const headers = ['level', 'check', 'host', 'finding', 'fix, or why it is suppressed'];
  let kept = rows;
  let size = mdTable(headers, rows).length;
  if (size > maxChars) {
    kept = [];
    size = mdTable(headers, []).length + 200;
    for (const r of rows) {
      const n = r.join(' | ').length + 5;
      if (size + n > maxChars) break;
      kept.push(r);
      size += n;
    }
    const rest = findings.slice(kept.length);
    const count = (level: string) => rest.filter((f) => f.level === level && f.suppressed === undefined).length;
    kept = [...kept, ['…', '', '', `${rest.length} more: ${count('error')} errors, ${count('warning')} warnings, ${count('notice')} notices, ${rest.filter((f) => f.suppressed !== undefined).length} suppressed (\`--format json\` lists them all)`, '']];
  }
  return mdTable(headers, kept);
}

/** A host's host-only decisions as a table (IPv6 rows only where they differ from IPv4). */
function hostOnlyTable(h: ReportHost): string {
  const decisions = h.hostOnly.filter((d) => d.family === 4 || d.admits !== h.hostOnly.find((x) => x.kind === d.kind && x.family === 4)?.admits);
  return mdTable(['what', 'address', 'host wall admits', 'rule'], decisions.map((d) => [mdText(d.label), mdCode(d.address), mdText(d.admits), mdText(d.rules.join('; '))]));
}

/** The host-only table most hosts of a stack share, when at least two do (shown once, under the diagram). */
function sharedHostOnly(hosts: readonly ReportHost[]): string | undefined {
  const counts = new Map<string, number>();
  for (const h of hosts) {
    const t = hostOnlyTable(h);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  const [table, n] = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0] ?? ['', 0];
  return n >= 2 ? table : undefined;
}

function hostSection(h: ReportHost, shared?: string): string {
  const out: string[] = [];
  const roles = h.roles.length > 0 ? ` — ${h.roles.map((t) => mdCode(t)).join(', ')}` : '';
  out.push(`#### ${mdCode(h.name)}${roles}`);
  const notes = [`${mdCode(h.address)}`];
  if (h.auditMode) notes.push('**audit mode: the host wall logs and accepts what it would drop**');
  notes.push(h.consistency.agree ? 'walls agree (`twinwall check`)' : `**walls disagree on ${plural(h.consistency.findings.length, 'flow')}** (\`twinwall check\`)`);
  out.push(notes.join(' · '));
  if (h.flows.length === 0) out.push('_Neither wall admits any new connection._');
  else {
    out.push(
      mdTable(
        ['dir', 'service', 'traffic', 'peers', 'network wall', 'host wall', 'role: reason'],
        h.flows.map((f) => [
          f.direction === 'ingress' ? 'in' : 'out',
          f.service !== undefined ? mdText(f.service) : '—',
          mdText(f.traffic + (f.conditions !== undefined ? ` ${f.conditions}` : '')),
          mdText([...(f.peerHosts.length > 0 ? f.peerHosts.map((p) => `host ${p}`) : []), ...f.peers].join(', ')),
          wall(f.networkWall),
          wall(f.hostWall),
          because(f),
        ]),
      ),
    );
  }
  const table = hostOnlyTable(h);
  if (table === shared) out.push('_Host-only decisions: as the stack\'s shared table above._');
  else {
    out.push('<details><summary>Host-only decisions (security groups never filter these)</summary>\n');
    out.push(table);
    out.push('\n</details>');
  }
  if (!h.consistency.agree) out.push(h.consistency.findings.map((f) => `- ${mdText(f)}`).join('\n'));
  return out.join('\n\n');
}

export interface MarkdownOptions {
  /** Characters to stay under (default 60,000; GitHub's limit is 65,536). */
  readonly budget?: number;
}

/** The report as one pull-request comment. */
export function reportMarkdown(report: Report, options: MarkdownOptions = {}): string {
  const s = report.summary;
  const hosts = report.stacks.flatMap((st) => st.hosts);
  const head = [
    '## twinwall report',
    `**${plural(s.stacks, 'stack')}, ${plural(s.hosts, 'host')}** · lint: ${plural(s.errors, 'error')}, ${plural(s.warnings, 'warning')}, ${plural(s.notices, 'notice')}${s.suppressed > 0 ? `, ${s.suppressed} suppressed` : ''} · walls: ${s.hostsWhereWallsDisagree === 0 ? `agree on every host` : `**disagree on ${plural(s.hostsWhereWallsDisagree, 'host')}**`}`,
    ...report.problems.map((p) => `> ⚠️ ${mdText(p)}`),
  ].join('\n\n');
  const findings = hosts.flatMap((h) => h.lint.map((f) => ({ ...f, host: `${h.stack}/${h.name}` })));
  const lintSection =
    findings.length === 0
      ? '### Lint\n\nNo findings.'
      : `### Lint\n\n${findingsTable(findings, Math.floor((options.budget ?? DEFAULT_MARKDOWN_BUDGET) * 0.4))}\n\n<sub>Checks: ${Object.keys(LINT_RULES)
          .map((id) => `${mdCode(id)} ${LINT_RULES[id as LintId].name}`)
          .join(' · ')} (docs/lint.md).</sub>`;
  // Diagrams first (a reviewer sees the shape before the rows), each bounded in edges; then lint
  // grouped per check and host; then each stack's shared host-only table once, and its hosts.
  const diagrams = report.stacks.map((st) => `### Stack ${mdCode(st.name)}\n\n${stackDiagram(st)}`);
  const optional: { title: string; text: string }[] = [];
  for (const st of report.stacks) {
    const shared = sharedHostOnly(st.hosts);
    if (shared !== undefined) {
      const users = st.hosts.filter((h) => hostOnlyTable(h) === shared).map((h) => mdCode(h.name));
      optional.push({
        title: `stack ${st.name} host-only decisions`,
        text: `#### Stack ${mdCode(st.name)}: host-only decisions shared by ${users.join(', ')}\n\n<details><summary>Host-only decisions (security groups never filter these)</summary>\n\n${shared}\n\n</details>`,
      });
    }
    for (const h of st.hosts) optional.push({ title: `${st.name}/${h.name}`, text: hostSection(h, shared) });
  }
  return fitSections([head, ...diagrams, lintSection], optional, options.budget ?? DEFAULT_MARKDOWN_BUDGET, (omitted) =>
    `> ✂️ **Cut to fit a pull-request comment:** ${plural(omitted.length, 'section')} left out (${omitted.slice(0, 20).map((t) => mdCode(t)).join(', ')}${omitted.length > 20 ? ', …' : ''}). Run \`twinwall report --format json\`, or see the full report in the CI artefacts.`,
  );
}

/** The report as JSON text (stable key order, two-space indent, trailing newline). */
export function reportJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// diff

const RISK_ICON: Record<string, string> = { high: '🛑 HIGH', medium: '⚠️ medium', low: 'low' };

function walls(list: readonly string[]): string {
  return list.length === 2 ? 'both' : list.join(', ');
}

function changeRows(h: HostDiff): string[][] {
  return [
    ...h.settings.map((s) => [RISK_ICON[s.risk], 'setting', mdText(s.text), 'host', '', '']),
    ...h.flows.map((f) => [RISK_ICON[f.risk], f.change, mdText(f.flow), walls(f.walls), mdText(f.reasons.join('; ')), f.because.length > 0 ? because(f) : '—']),
  ];
}

const CHANGE_HEADERS = ['risk', 'change', 'flow', 'walls', 'why it matters', 'role: reason'];

function diffHostSection(h: HostDiff): string {
  const renamed = h.renamedFrom !== undefined ? ` — **renamed** from ${mdCode(h.renamedFrom)}` : '';
  const title = `### ${mdCode(`${h.stack}/${h.name}`)}${renamed}`;
  const identity = `${mdCode(h.address)}`;
  if (h.status === 'added' || h.status === 'removed') {
    const flows = h.admits ?? [];
    const rows = flows.map((f) => [f.direction === 'ingress' ? 'in' : 'out', f.service !== undefined ? mdText(f.service) : '—', mdText(f.traffic), mdText(f.peers.join(', ')), because(f)]);
    const risky = changeRows(h);
    const beyond = risky.length > 0 ? `\n\nWhat this new host may send beyond its VPC, and its settings:\n\n${mdTable(CHANGE_HEADERS, risky)}` : '';
    const lint = h.lint.introduced.length > 0 ? `\n\n${findingsTable(h.lint.introduced.map((f) => ({ ...f, host: `${h.stack}/${h.name}` })))}` : '';
    return `${title} — host ${h.status === 'added' ? '**added**' : '**removed**'}\n\n${identity}${beyond}\n\n${rows.length === 0 ? '_It admits no new connections._' : mdTable(['dir', 'service', 'traffic', 'peers', 'role: reason'], rows)}${lint}`;
  }
  const out: string[] = [title, identity];
  const rows = changeRows(h);
  if (rows.length > 0) out.push(mdTable(CHANGE_HEADERS, rows));
  if (h.attribution.length > 0) {
    out.push(
      mdTable(
        ['dir', 'traffic', 'peers', 'before', 'after'],
        h.attribution.map((a) => [a.direction === 'ingress' ? 'in' : 'out', mdText(a.traffic), mdText(a.peers.join(', ')), because({ because: a.before }), because({ because: a.after })]),
      ),
    );
  }
  const lint = [...h.lint.introduced.map((f) => ({ ...f, host: 'new' })), ...h.lint.resolved.map((f) => ({ ...f, host: 'resolved' }))];
  if (lint.length > 0) out.push(`Lint (new / resolved):\n\n${findingsTable(lint)}`);
  return out.join('\n\n');
}

/** The diff as one pull-request comment. */
export function diffMarkdown(diff: Diff, options: MarkdownOptions = {}): string {
  const s = diff.summary;
  const changed = diff.hosts.filter((h) => h.status !== 'unchanged');
  const verdict = s.widenedEgress
    ? `🛑 **Egress widened** on ${plural(new Set(diff.hosts.filter((h) => h.flows.some((f) => f.risk === 'high') || h.settings.some((x) => x.risk === 'high')).map((h) => `${h.stack}\u0000${h.address}`)).size, 'host')}: ${plural(s.highRisk, 'high-risk change')}.`
    : s.anyChange
      ? '✅ No egress widening.'
      : '✅ No change: both walls of every host admit exactly what they did.';
  const head = [
    '## twinwall diff',
    `${verdict} Flows: ${s.flowsAdded} added, ${s.flowsRemoved} removed · hosts: ${s.hostsAdded} added, ${s.hostsRemoved} removed, ${s.hostsChanged} changed.`,
    ...diff.problems.map((p) => `> ⚠️ ${mdText(p)}`),
  ].join('\n\n');
  const high = diff.hosts.flatMap((h) => [
    ...h.settings.filter((x) => x.risk === 'high').map((x) => [mdCode(`${h.stack}/${h.name}`), 'setting', mdText(x.text), 'host', '']),
    ...h.flows.filter((f) => f.risk === 'high').map((f) => [mdCode(`${h.stack}/${h.name}`), f.change, mdText(f.flow), walls(f.walls), mdText(f.reasons.join('; '))]),
  ]);
  const fixed = [head];
  if (high.length > 0) fixed.push(`### High risk\n\n${mdTable(['host', 'change', 'flow', 'walls', 'why it matters'], high)}`);
  const optional = changed.map((h) => ({ title: `${h.stack}/${h.name}`, text: diffHostSection(h) }));
  return fitSections(fixed, optional, options.budget ?? DEFAULT_MARKDOWN_BUDGET, (omitted) =>
    `> ✂️ **Cut to fit a pull-request comment:** the details of ${plural(omitted.length, 'host')} are left out (${omitted.slice(0, 20).map((t) => mdCode(t)).join(', ')}${omitted.length > 20 ? ', …' : ''}). Run \`twinwall diff --format json\`, or see the CI artefacts.`,
  );
}

/** The diff as JSON text. */
export function diffJson(diff: Diff): string {
  return `${JSON.stringify(diff, null, 2)}\n`;
}
