/**
 * `twinwall report`: per stack and host, what the walls admit (with the role and reason behind
 * each flow), the host-only decisions, lint findings (suppressed ones with their reason) and
 * whether the walls agree. Built from the synthesized artefacts alone, through the checker's
 * reader and models. The JSON form is versioned: see docs/report-schema.md and
 * docs/report-schema.json; a change that removes or renames a field bumps REPORT_SCHEMA_VERSION.
 */
import { Provenance } from '../policy';
import { HostCheck, StackInput, checkHost } from '../check/compare';
import { readStack } from '../check/terraform';
import { terraformJson } from '../check/terraform-shape';
import { LintLevel } from '../lint/catalog';
import { LintFinding, active, lintHost } from '../lint/engine';
import { subjectFromArtefacts } from '../lint/from-artefacts';
import { FlowRow, HostOnlyRow, hostFlows, hostOnlyDecisions } from './host';
import { parseLogPrefix } from '../log-prefix';

/** Bumped when a field is removed or changes meaning; adding optional fields keeps it. */
export const REPORT_SCHEMA_VERSION = 1;

export interface ReportFlow {
  readonly direction: 'ingress' | 'egress';
  readonly families: readonly (4 | 6)[];
  readonly service?: string;
  readonly traffic: string;
  readonly peers: readonly string[];
  /** Security groups (resource addresses) the network wall names for the peers. */
  readonly peerGroups: readonly string[];
  /** Hosts of the same stack those groups belong to. */
  readonly peerHosts: readonly string[];
  readonly conditions?: string;
  readonly networkWall: { readonly admits: boolean; readonly rules: readonly string[] };
  readonly hostWall: { readonly admits: boolean; readonly rules: readonly string[] };
  readonly because: readonly Provenance[];
}

export interface ReportHostOnly {
  readonly kind: HostOnlyRow['kind'];
  readonly label: string;
  readonly family: 4 | 6;
  readonly address: string;
  readonly admits: string;
  readonly rules: readonly string[];
}

export interface ReportFinding {
  readonly id: string;
  readonly name: string;
  readonly level: LintLevel;
  readonly location: string;
  readonly message: string;
  readonly fix: string;
  readonly references: readonly string[];
  readonly suppressed?: { readonly reason: string };
}

export interface ReportHost {
  readonly stack: string;
  readonly name: string;
  readonly address: string;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly auditMode: boolean;
  readonly flows: readonly ReportFlow[];
  readonly hostOnly: readonly ReportHostOnly[];
  readonly lint: readonly ReportFinding[];
  readonly consistency: { readonly agree: boolean; readonly findings: readonly string[]; readonly exceptions: number };
}

export interface ReportStack {
  readonly name: string;
  readonly hosts: readonly ReportHost[];
}

export interface ReportSummary {
  readonly stacks: number;
  readonly hosts: number;
  readonly errors: number;
  readonly warnings: number;
  readonly notices: number;
  readonly suppressed: number;
  readonly hostsWhereWallsDisagree: number;
}

export interface Report {
  readonly schema: 'twinwall-report';
  readonly version: typeof REPORT_SCHEMA_VERSION;
  readonly summary: ReportSummary;
  readonly problems: readonly string[];
  readonly stacks: readonly ReportStack[];
}

/** One host as the reader found it, with its check, lint subject's JSON, and report. */
export interface AnalysedHost {
  readonly check: HostCheck;
  readonly report: ReportHost;
  readonly findings: readonly LintFinding[];
}

function rolesOf(tf: unknown, groups: readonly string[], flows: readonly FlowRow[]): string[] {
  const res = (tf as { resource?: { aws_security_group?: Record<string, { tags?: Record<string, unknown> }> } })?.resource?.aws_security_group ?? {};
  const tagged = groups.flatMap((g) => {
    const tag = g.startsWith('aws_security_group.') ? res[g.slice('aws_security_group.'.length)]?.tags?.['twinwall:roles'] : undefined;
    return typeof tag === 'string' ? tag.split(' ').filter((r) => r !== '') : [];
  });
  if (tagged.length > 0) return [...new Set(tagged)];
  return [...new Set(flows.flatMap((f) => f.because.map((p) => p.role)))].sort();
}

function toFinding(f: LintFinding): ReportFinding {
  return {
    id: f.id,
    name: f.name,
    level: f.level,
    location: f.location,
    message: f.message,
    fix: f.fix,
    references: f.references,
    ...(f.suppressed !== undefined ? { suppressed: f.suppressed } : {}),
  };
}

/** Which host of `hosts` carries the group `ref` (a resource address). */
function ownerOf(ref: string, hosts: readonly HostCheck[]): string | undefined {
  return hosts.find((h) => h.host.groups.includes(ref))?.host.name;
}

/** Does a host wall (iptables `--log-prefix` or nftables `log prefix`) log with an audit-mode prefix (lib/log-prefix.ts reads it)? */
function logsAudit(table: string): boolean {
  for (const m of table.matchAll(/(?:--log-prefix|log prefix)\s+"([^"]*)"/g)) {
    const prefix = parseLogPrefix(m[1]);
    if (prefix !== undefined && 'verdict' in prefix && prefix.verdict === 'audit') return true;
  }
  return false;
}

/** Analyse every host of one stack's JSON. */
export function analyseStack(stack: StackInput): AnalysedHost[] {
  // Every reader below sees the same checked document (TW291 ARTEFACT_SHAPE otherwise).
  const json = terraformJson(stack.json);
  const checks = readStack(stack.name, json).map((host) => checkHost(host));
  return checks.map((check) => {
    const flows = hostFlows(check);
    const findings = lintHost(subjectFromArtefacts(check, json));
    const states = [check.wall.tables[4]?.text, check.wall.tables[6]?.text];
    const report: ReportHost = {
      stack: stack.name,
      name: check.host.name,
      address: check.host.address,
      roles: rolesOf(json, check.host.groups, flows),
      groups: check.host.groups,
      auditMode: states.some((t) => t !== undefined && logsAudit(t)),
      flows: flows.map((f) => ({
        direction: f.direction,
        families: f.families,
        ...(f.service !== undefined ? { service: f.service } : {}),
        traffic: f.traffic,
        peers: f.peers,
        peerGroups: f.peerGroups,
        peerHosts: [...new Set(f.peerGroups.map((g) => ownerOf(g, checks)).filter((h): h is string => h !== undefined))],
        ...(f.conditions !== '' ? { conditions: f.conditions } : {}),
        networkWall: { admits: f.network.length > 0, rules: f.network },
        hostWall: { admits: f.host.length > 0, rules: f.host },
        because: f.because,
      })),
      hostOnly: hostOnlyDecisions(check).map((d) => ({ ...d })),
      lint: findings.map(toFinding),
      consistency: { agree: check.findings.length === 0, findings: check.findings.map((f) => f.text), exceptions: check.exceptions.length },
    };
    return { check, report, findings };
  });
}

/** The report of every stack. */
export function buildReport(stacks: readonly StackInput[]): { report: Report; analysed: AnalysedHost[] } {
  const problems: string[] = [];
  if (stacks.length === 0) problems.push('no stacks found');
  const analysed: AnalysedHost[] = [];
  const out: ReportStack[] = [];
  for (const s of [...stacks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const hosts = analyseStack(s);
    if (hosts.length === 0) problems.push(`stack ${s.name} has no aws_instance or aws_launch_template`);
    analysed.push(...hosts);
    out.push({ name: s.name, hosts: hosts.map((h) => h.report) });
  }
  const all = analysed.flatMap((h) => h.findings);
  const report: Report = {
    schema: 'twinwall-report',
    version: REPORT_SCHEMA_VERSION,
    summary: {
      stacks: out.length,
      hosts: analysed.length,
      errors: active(all, 'error').length,
      warnings: active(all, 'warning').length,
      notices: active(all, 'notice').length,
      suppressed: all.filter((f) => f.suppressed !== undefined).length,
      hostsWhereWallsDisagree: analysed.filter((h) => !h.report.consistency.agree).length,
    },
    problems,
    stacks: out,
  };
  return { report, analysed };
}
