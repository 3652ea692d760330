/**
 * A short per-host table of what each wall admits, computed from the renderings themselves (the
 * security-group rule specs and the iptables-restore text), not from the policy, so that the
 * table shows what would actually be deployed. `npm run synth` prints it for every host.
 *
 * This is a reading aid, not the consistency checker: it lists new connections each wall lets
 * through and marks the rows where the two differ. The fixed part of the host wall (loopback,
 * replies, DHCP, ICMP errors, IPv6 neighbour discovery, the forged-source drop) is summarised in
 * one footer line instead of rows.
 */
import { terminalText } from './terminal';
import { Family } from './address';
import { Direction } from './flow';
import { awsLinkLocalService } from './peer';
import { HostRendering, IPTABLES_CHAINS, SgRuleSpec } from './render';
import { parseRuleLine } from './check/iptables-parse';
import { allPortsText } from './port';

/** What one wall does with one kind of new connection. */
export interface WallRow {
  readonly direction: Direction;
  /** "tcp/25", "udp/33434-33534", "icmp 8", "icmpv6 all", "all". */
  readonly traffic: string;
  /** The remote network as a CIDR ("any IPv4" / "any IPv6" for the whole family). */
  readonly remote: string;
  /** Network wall: "yes", "sg <label>", "pl <id>" or "-" (not admitted). */
  readonly network: string;
  /** Host wall: "yes", "uid <n> only" or "-". */
  readonly host: string;
  /** Why the walls differ, when they do for a documented reason. */
  readonly note?: string;
  /** The walls differ and no documented reason explains it. */
  readonly mismatch: boolean;
}

const PROTOCOL_RANK: Record<string, number> = { all: 0, tcp: 1, udp: 2, icmp: 3, icmpv6: 4 };

interface Traffic {
  readonly protocol: string;
  readonly label: string;
  readonly sortKey: readonly number[];
}

function portTraffic(protocol: 'tcp' | 'udp', from: number | undefined, to: number | undefined): Traffic {
  const lo = from ?? 0;
  const hi = to ?? 65535;
  const label = lo === 0 && hi === 65535 ? allPortsText(protocol) : lo === hi ? `${protocol}/${lo}` : `${protocol}/${lo}-${hi}`;
  return { protocol, label, sortKey: [PROTOCOL_RANK[protocol], lo, hi] };
}

function icmpTraffic(protocol: 'icmp' | 'icmpv6', type: number | undefined, code: number | undefined): Traffic {
  const t = type === undefined || type < 0 ? undefined : type;
  const c = t === undefined || code === undefined || code < 0 ? undefined : code;
  const label = t === undefined ? allPortsText(protocol) : c === undefined ? `${protocol} ${t}` : `${protocol} ${t}/${c}`;
  return { protocol, label, sortKey: [PROTOCOL_RANK[protocol], t ?? -1, c ?? -1] };
}

const ALL_TRAFFIC: Traffic = { protocol: 'all', label: 'all', sortKey: [0] };

function remoteLabel(cidr: string): string {
  if (cidr === '0.0.0.0/0') return 'any IPv4';
  if (cidr === '::/0') return 'any IPv6';
  return cidr;
}

function familyOf(cidr: string): Family {
  return cidr.includes(':') ? 6 : 4;
}

interface Cell {
  readonly direction: Direction;
  readonly traffic: Traffic;
  readonly remote: string;
  readonly family: Family;
}

function cellKey(c: Cell): string {
  return `${c.direction}|${c.traffic.label}|${c.remote}`;
}

// ---------------------------------------------------------------------------------------------
// Network wall: the security-group rule specs.

function specTraffic(spec: SgRuleSpec): Traffic {
  switch (spec.ipProtocol) {
    case '-1':
      return ALL_TRAFFIC;
    case 'tcp':
    case 'udp':
      return portTraffic(spec.ipProtocol, spec.fromPort, spec.toPort);
    case 'icmp':
    case 'icmpv6':
      return icmpTraffic(spec.ipProtocol, spec.fromPort, spec.toPort);
  }
}

/** One cell per remote CIDR; security-group and prefix-list targets expand to their host CIDRs. */
function networkCells(rendering: HostRendering): { cell: Cell; verdict: string }[] {
  const out: { cell: Cell; verdict: string }[] = [];
  for (const spec of rendering.securityGroups.rules) {
    const traffic = specTraffic(spec);
    const base = { direction: spec.direction, traffic };
    if (spec.cidrIpv4 !== undefined || spec.cidrIpv6 !== undefined) {
      const cidr = (spec.cidrIpv4 ?? spec.cidrIpv6) as string;
      out.push({ cell: { ...base, remote: remoteLabel(cidr), family: familyOf(cidr) }, verdict: 'yes' });
      continue;
    }
    // A reference: the policy says which CIDRs stand for it on the host wall.
    const groupId = spec.referencedSecurityGroupId;
    const listId = spec.prefixListId;
    const target = rendering.policy.rules
      .map((r) => r.target)
      .find((t) => (t.kind === 'securityGroup' && t.groupId === groupId) || (t.kind === 'prefixList' && t.prefixListId === listId));
    if (target === undefined || target.kind === 'cidr') continue; // not from this policy: nothing to line up with
    const verdict = `${target.kind === 'securityGroup' ? 'sg' : 'pl'} ${target.label}`;
    const cidrs = spec.hostCidrs ?? [];
    for (const cidr of cidrs) {
      if (traffic.protocol === 'icmp' && familyOf(cidr) !== 4) continue;
      if (traffic.protocol === 'icmpv6' && familyOf(cidr) !== 6) continue;
      out.push({ cell: { ...base, remote: remoteLabel(cidr), family: familyOf(cidr) }, verdict });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Host wall: the iptables-restore text.

interface ParsedRule {
  readonly chain: string;
  readonly target?: string;
  readonly options: ReadonlyMap<string, string>;
  readonly negated: boolean;
}

/**
 * Parse one `-A CHAIN …` line into its options (comments removed; `!` noted, not interpreted),
 * with the checker's iptables-restore parser (lib/check/iptables-parse.ts), so twinwall has one.
 */
export function parseAppend(line: string, family: Family): ParsedRule | undefined {
  if (!/^-A\s/.test(line.trim())) return undefined;
  let rule;
  try {
    rule = parseRuleLine(line, family).rules[0];
  } catch {
    return undefined;
  }
  if (rule === undefined) return undefined;
  const options = new Map<string, string>();
  for (const o of rule.options) if (o.name !== '--comment') options.set(o.name, o.args.join(' '));
  return { chain: rule.chain, target: rule.target?.name, options, negated: rule.options.some((o) => o.negated) };
}

function ruleTraffic(rule: ParsedRule): Traffic | undefined {
  // The parser gives protocols as numbers.
  const proto = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'ipv6-icmp' }[rule.options.get('-p') ?? ''] ?? rule.options.get('-p');
  if (proto === undefined) return ALL_TRAFFIC;
  if (proto === 'tcp' || proto === 'udp') {
    const dport = rule.options.get('--dport');
    if (dport === undefined) return portTraffic(proto, undefined, undefined);
    const [a, b] = dport.split(':').map(Number);
    return portTraffic(proto, a, b ?? a);
  }
  if (proto === 'icmp' || proto === 'ipv6-icmp' || proto === 'icmpv6') {
    const p = proto === 'icmp' ? 'icmp' : 'icmpv6';
    const spec = rule.options.get(p === 'icmp' ? '--icmp-type' : '--icmpv6-type');
    if (spec === undefined) return icmpTraffic(p, undefined, undefined);
    const [t, c] = spec.split('/').map(Number);
    return icmpTraffic(p, t, c);
  }
  return undefined;
}

/**
 * New connections the host wall admits: every ACCEPT in the policy chains, and the ACCEPTs of
 * new connections in INPUT/OUTPUT (the host-only decisions, such as instance metadata).
 */
function hostCells(text: string, family: Family, sets: ReadonlyMap<string, readonly string[]>): { cell: Cell; verdict: string }[] {
  const out: { cell: Cell; verdict: string }[] = [];
  for (const line of text.split('\n')) {
    const rule = parseAppend(line, family);
    if (rule === undefined || rule.target !== 'ACCEPT') continue;
    const policyChain = rule.chain === IPTABLES_CHAINS.ingress || rule.chain === IPTABLES_CHAINS.egress;
    const builtin = (rule.chain === 'INPUT' || rule.chain === 'OUTPUT') && (rule.options.get('--ctstate') ?? '').split(',').includes('NEW');
    if (!policyChain && !builtin) continue;
    const direction: Direction = rule.chain === 'INPUT' || rule.chain === IPTABLES_CHAINS.ingress ? 'ingress' : 'egress';
    const traffic = ruleTraffic(rule);
    if (traffic === undefined) continue;
    const uid = rule.options.get('--uid-owner');
    const verdict = rule.negated ? 'yes (negated match)' : uid !== undefined ? `uid ${uid} only` : 'yes';
    // An ipset match stands for one rule per member of the set (lib/render/iptables.ts).
    const set = rule.options.get('--match-set')?.split(' ')[0];
    const addrs = set !== undefined ? (sets.get(set) ?? []) : [rule.options.get(direction === 'ingress' ? '-s' : '-d') ?? (family === 4 ? '0.0.0.0/0' : '::/0')];
    for (const addr of addrs) out.push({ cell: { direction, traffic, remote: remoteLabel(addr), family }, verdict });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function hostOnlyNote(remote: string): string | undefined {
  const address = remote.split('/')[0];
  if (remote.startsWith('any ')) return undefined;
  try {
    const service = awsLinkLocalService(address);
    return service === undefined ? undefined : `AWS never filters ${service}`;
  } catch {
    return undefined;
  }
}

/** The rows of one host's table, ingress first, then by protocol, port and remote. */
export function summariseHost(rendering: HostRendering): WallRow[] {
  const cells = new Map<string, { cell: Cell; network?: string; host?: string }>();
  const put = (cell: Cell, side: 'network' | 'host', verdict: string) => {
    const key = cellKey(cell);
    const entry = cells.get(key) ?? { cell };
    const prior = entry[side];
    entry[side] = prior === undefined || prior === verdict ? verdict : `${prior}, ${verdict}`;
    cells.set(key, entry);
  };
  for (const { cell, verdict } of networkCells(rendering)) put(cell, 'network', verdict);
  const sets = new Map<string, string[]>();
  for (const m of (rendering.iptables.ipsets ?? '').matchAll(/^add (\S+) (\S+)$/gm)) sets.set(m[1], [...(sets.get(m[1]) ?? []), m[2]]);
  for (const { cell, verdict } of hostCells(rendering.iptables.v4, 4, sets)) put(cell, 'host', verdict);
  for (const { cell, verdict } of hostCells(rendering.iptables.v6, 6, sets)) put(cell, 'host', verdict);

  const rows: { row: WallRow; cell: Cell }[] = [];
  for (const { cell, network, host } of cells.values()) {
    const onNetwork = network !== undefined;
    const onHost = host !== undefined;
    let note: string | undefined;
    let mismatch = false;
    if (onNetwork !== onHost) {
      note = onHost ? hostOnlyNote(cell.remote) : undefined;
      mismatch = note === undefined;
      if (mismatch) note = onHost ? 'host wall only!' : 'network wall only!';
    } else if (host !== undefined && host !== 'yes') {
      note = 'host narrows it';
    }
    rows.push({
      cell,
      row: { direction: cell.direction, traffic: cell.traffic.label, remote: cell.remote, network: network ?? '-', host: host ?? '-', note, mismatch },
    });
  }
  const compare = (a: Cell, b: Cell): number => {
    if (a.direction !== b.direction) return a.direction === 'ingress' ? -1 : 1;
    const n = Math.max(a.traffic.sortKey.length, b.traffic.sortKey.length);
    for (let i = 0; i < n; i++) {
      const d = (a.traffic.sortKey[i] ?? -2) - (b.traffic.sortKey[i] ?? -2);
      if (d !== 0) return d;
    }
    if (a.family !== b.family) return a.family - b.family;
    return a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : 0;
  };
  return rows.sort((x, y) => compare(x.cell, y.cell)).map((r) => r.row);
}

const HEADERS = ['', 'traffic', 'remote', 'network wall', 'host wall', ''] as const;

/** A plain-text table for one host, ending with what both walls always do (control characters escaped). */
export function formatHostSummary(rendering: HostRendering): string {
  const policy = rendering.policy;
  const rows = summariseHost(rendering);
  const table: string[][] = [
    [...HEADERS],
    ...rows.map((r) => [r.direction === 'ingress' ? 'in' : 'out', r.traffic, r.remote, r.network, r.host, r.note ?? '']),
  ];
  const widths = HEADERS.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const lines = table.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i])).join('  ')}`.trimEnd());
  const mismatches = rows.filter((r) => r.mismatch).length;
  const ud = rendering.userData;
  const text = [
    `host ${policy.name} (${policy.roles.map((r) => r.name).join(', ')})${policy.options.audit ? ' — AUDIT MODE: the host wall logs and accepts what it would drop' : ''}`,
    ...lines,
    `  both walls deny everything else, both directions; the host wall also keeps loopback, replies, DHCP, ICMP errors${'\n'}  and IPv6 neighbour discovery, and drops packets with a forged source. user-data: ${ud.gzipped ? `${ud.bytes} bytes gzipped (${ud.plainBytes} plain)` : `${ud.bytes} bytes`} of 16384.`,
    policy.options.onLoadFailure === 'lockdown'
      ? `  a host-wall table that fails to load at boot leaves its fallback: DROP but loopback, replies, DHCP, neighbour discovery${'\n'}  and the admin roles' ingress (onLoadFailure lockdown).`
      : '  a host-wall table that fails to load at boot leaves that family unfiltered on the host (onLoadFailure open).',
    ...(mismatches > 0 ? [`  !! the walls differ on ${mismatches} row(s) with no documented reason`] : []),
  ].join('\n');
  // Peer labels are free text: printed to a terminal, so ESC, CR and bidi controls are escaped.
  return terminalText(text);
}
