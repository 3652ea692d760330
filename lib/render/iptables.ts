/**
 * The host wall: a host policy rendered as iptables-restore text (filter table), one document
 * for IPv4 and one for IPv6. Pure: no I/O, no cdktf; the same policy always gives the same bytes.
 *
 * Layout of each document (top to bottom is the order packets meet the rules):
 *
 *   INPUT   loopback → [IPv6: neighbour discovery, MLD, ICMPv6 errors (RFC 4890)] →
 *           replies (ESTABLISHED,RELATED) → INVALID → DHCP client → tw-in (the policy) → log, drop
 *   OUTPUT  loopback → [unspecified-source exceptions: DHCPDISCOVER / IPv6 DAD, RS, MLD] →
 *           forged source → [IPv6: ND, MLD] → replies → INVALID → DHCP client →
 *           instance metadata → tw-out (the policy) → log, drop
 *   FORWARD log, drop (a host is not a router)
 *
 * Every terminal decision other than the policy's own ACCEPTs goes through a small chain that
 * logs (rate-limited, with a prefix naming direction and reason) and then drops — or, in audit
 * mode, accepts. Built-in policies are DROP in the file itself, so there is no open window while
 * the rules load. No interface is named except `lo`: EC2 interface names vary (eth0, ens5 …).
 */
import { Cidr, Family } from '../address';
import { Direction } from '../flow';
import { AWS_LINK_LOCAL } from '../peer';
import { TwinwallError, show } from '../errors';
import { HostPolicy, PolicyRule, Provenance } from '../policy';

/** The rendered host wall: iptables-restore input for `iptables-restore` and `ip6tables-restore`. */
export interface IptablesRuleset {
  /** IPv4 rules (/etc/iptables/rules.v4). */
  readonly v4: string;
  /** IPv6 rules (/etc/iptables/rules.v6). */
  readonly v6: string;
  /**
   * `ipset restore` input (/etc/iptables/ipsets) creating and filling the address sets the rules
   * match with `-m set`; present only when an address set was above the threshold. It must be
   * loaded before the tables, which refer to the sets by name.
   */
  readonly ipsets?: string;
}

export interface IptablesRenderOptions {
  /**
   * An address set of more than this many CIDRs (one family, one direction, one protocol and
   * port match) becomes an ipset `hash:net` set matched by one rule, instead of one rule per
   * CIDR. Default 16 (DEFAULT_IPSET_THRESHOLD); `Infinity` keeps every rule linear.
   */
  readonly ipsetThreshold?: number;
}

/**
 * Above this many CIDRs an address set becomes an ipset. A linear chain costs every new
 * connection one comparison per rule; a hash:net set costs one lookup per distinct prefix length
 * whatever its size (docs/benchmarks.md), so a handful of rules is cheaper linear and readable,
 * and anything longer is cheaper as a set.
 */
export const DEFAULT_IPSET_THRESHOLD = 16;

/** hash:net holds at most this many entries unless told otherwise (`maxelem`). */
const IPSET_DEFAULT_MAXELEM = 65536;

/** The user chains twinwall creates, by purpose. */
export const IPTABLES_CHAINS = {
  /** The policy's ingress rules, one ACCEPT per (rule, host CIDR). */
  ingress: 'tw-in',
  /** The policy's egress rules. */
  egress: 'tw-out',
  /** Final log-and-drop of inbound packets no rule admitted. */
  ingressDrop: 'tw-in-drop',
  /** Log-and-drop of inbound packets conntrack calls INVALID. */
  ingressInvalid: 'tw-in-invalid',
  /** Final log-and-drop of outbound packets no rule admitted. */
  egressDrop: 'tw-out-drop',
  /** Log-and-drop of outbound packets conntrack calls INVALID. */
  egressInvalid: 'tw-out-invalid',
  /** Log-and-drop of outbound packets whose source address is not one of the host's. */
  egressSpoofed: 'tw-out-spoof',
  /** Log-and-drop of instance-metadata access the policy does not allow. */
  egressMetadata: 'tw-out-imds',
  /** Log-and-drop of forwarded packets. */
  forwardDrop: 'tw-fwd-drop',
} as const;

/** The kernel keeps at most 29 characters of a LOG prefix. */
export const LOG_PREFIX_MAX = 29;
/** iptables' comment match keeps at most 255 bytes. */
export const COMMENT_MAX = 255;
/** Rate limit of every enforcing LOG rule: enough to see an attack, too little to fill a disk. */
export const LOG_LIMIT = { rate: '10/min', burst: 20 } as const;
/**
 * Audit mode exists to learn from (`twinwall learn`), so its LOG rules are limited per flow
 * instead — per (source, destination, destination port) — so every distinct flow is logged
 * however busy the host, a scan shows as many flows, and one chatty flow cannot fill the log.
 */
export const AUDIT_LOG_LIMIT = { rate: '2/min', burst: 3, mode: 'srcip,dstip,dstport', expireMs: 600_000 } as const;

type Verdict = 'drop' | 'audit';

/** LOG prefix: `twinwall <direction> <drop|audit>[ <reason>]: `, always ≤ 29 characters. */
export function logPrefix(direction: Direction | 'forward', verdict: Verdict, reason?: 'inv' | 'spoof' | 'imds'): string {
  const prefix = `twinwall ${direction} ${verdict}${reason === undefined ? '' : ` ${reason}`}: `;
  if (prefix.length > LOG_PREFIX_MAX) throw new RangeError(`LOG prefix ${JSON.stringify(prefix)} is longer than ${LOG_PREFIX_MAX} characters`);
  return prefix;
}

const TRANSLITERATE: Record<string, string> = {
  '\u2026': '...',
  '\u2013': '-',
  '\u2014': '-',
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': "'",
  '\u201d': "'",
  '\u2192': '->',
  '"': "'",
  '\\': '/',
};

/**
 * Make text safe inside `--comment "…"`: printable ASCII only (a few typographic characters are
 * transliterated, the rest become `?`), no double quotes or backslashes (the restore parser would
 * read them as quoting), at most 255 bytes.
 */
export function commentText(text: string): string {
  let out = '';
  for (const ch of text.replace(/\s+/g, ' ').trim()) {
    const mapped = TRANSLITERATE[ch];
    if (mapped !== undefined) out += mapped;
    else if (ch >= ' ' && ch <= '~') out += ch;
    else out += '?';
  }
  return out.length > COMMENT_MAX ? `${out.slice(0, COMMENT_MAX - 3)}...` : out;
}

function comment(text: string): string {
  return `-m comment --comment "${commentText(text)}"`;
}

/** "mailServer/smtp: delivering mail to other mail servers", one entry per provenance. */
export function describeRule(because: readonly Provenance[]): string {
  return because.map((p) => `${p.role}${p.service === undefined ? '' : `/${p.service}`}: ${p.reason}`).join(' | ');
}

function portMatch(rule: PolicyRule, family: Family): string | undefined {
  const port = rule.port;
  switch (port.protocol) {
    case 'tcp':
    case 'udp': {
      const from = port.from as number;
      const to = port.to as number;
      const dport = port.isAll ? '' : ` -m ${port.protocol} --dport ${from === to ? `${from}` : `${from}:${to}`}`;
      return `-p ${port.protocol}${dport} -m conntrack --ctstate NEW`;
    }
    case 'icmp':
    case 'icmpv6': {
      if ((port.protocol === 'icmp') !== (family === 4)) return undefined; // the other family's table
      const [proto, match, option] = family === 4 ? ['icmp', 'icmp', '--icmp-type'] : ['ipv6-icmp', 'icmp6', '--icmpv6-type'];
      if (port.icmpType === undefined) return `-p ${proto}`;
      const type = port.icmpCode === undefined ? `${port.icmpType}` : `${port.icmpType}/${port.icmpCode}`;
      return `-p ${proto} -m ${match} ${option} ${type}`;
    }
    case 'all':
      return '';
  }
}

/** The `-A tw-in|tw-out …` line admitting one CIDR for one policy rule. */
function policyLine(rule: PolicyRule, match: string, c: Cidr): string {
  const chain = rule.direction === 'ingress' ? IPTABLES_CHAINS.ingress : IPTABLES_CHAINS.egress;
  const side = rule.direction === 'ingress' ? '-s' : '-d';
  return [`-A ${chain}`, c.isAny ? '' : `${side} ${c.text}`, match, comment(describeRule(rule.because)), '-j ACCEPT'].filter((s) => s !== '').join(' ');
}

/** One ipset of a host wall: a name, its family, and its CIDRs in canonical order. */
export interface IpsetSpec {
  readonly name: string;
  readonly family: Family;
  readonly cidrs: readonly Cidr[];
}

/** "tcp-22", "udp-1024-65535", "tcp-all", "icmp-3", "icmp-3-4", "icmp-all", "all". */
function matchSlug(rule: PolicyRule): string {
  const port = rule.port;
  if (port.protocol === 'all') return 'all';
  if (port.protocol === 'tcp' || port.protocol === 'udp') {
    if (port.isAll) return `${port.protocol}-all`;
    return port.from === port.to ? `${port.protocol}-${port.from}` : `${port.protocol}-${port.from}-${port.to}`;
  }
  if (port.icmpType === undefined) return `${port.protocol}-all`;
  return port.icmpCode === undefined ? `${port.protocol}-${port.icmpType}` : `${port.protocol}-${port.icmpType}-${port.icmpCode}`;
}

/** The set's name: "tw4-in-tcp-22" (family, direction, match); at most 23 of ipset's 31 characters. */
export function ipsetName(family: Family, direction: Direction, rule: PolicyRule): string {
  return `tw${family}-${direction === 'ingress' ? 'in' : 'out'}-${matchSlug(rule)}`;
}

interface PolicySection {
  readonly lines: string[];
  readonly sets: IpsetSpec[];
}

/**
 * The policy's lines in one family. Rules that share a direction and a protocol/port match form
 * one address set; a set of more than `threshold` CIDRs (0.0.0.0/0 and ::/0 aside: hash:net has no
 * /0, and they stay one line each) becomes one `-m set` line where its first rule was, the rest
 * stay one line per rule and CIDR. Every line is an ACCEPT, so order does not change what is
 * admitted; canonical order keeps the output stable.
 */
function policySection(policy: HostPolicy, family: Family, threshold: number): PolicySection {
  const groups = new Map<string, { rule: PolicyRule; match: string; cidrs: Map<string, Cidr>; because: Provenance[] }>();
  for (const rule of policy.rules) {
    const match = portMatch(rule, family);
    if (match === undefined) continue;
    const mine = rule.hostCidrs.filter((c) => c.family === family && !c.isAny);
    if (mine.length === 0) continue;
    const key = `${rule.direction}|${match}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { rule, match, cidrs: new Map(), because: [] }));
    for (const c of mine) g.cidrs.set(c.text, c);
    g.because.push(...rule.because);
  }
  const asSet = new Map<string, IpsetSpec>();
  for (const [key, g] of groups) {
    if (g.cidrs.size <= threshold) continue;
    const cidrs = [...g.cidrs.values()].sort((a, b) => (a.network !== b.network ? (a.network < b.network ? -1 : 1) : a.prefix - b.prefix));
    asSet.set(key, { name: ipsetName(family, g.rule.direction, g.rule), family, cidrs });
  }
  const lines: string[] = [];
  const emitted = new Set<string>();
  for (const rule of policy.rules) {
    const match = portMatch(rule, family);
    if (match === undefined) continue;
    const key = `${rule.direction}|${match}`;
    const set = asSet.get(key);
    for (const c of rule.hostCidrs) {
      if (c.family !== family) continue;
      if (set === undefined || c.isAny) {
        lines.push(policyLine(rule, match, c));
        continue;
      }
      if (emitted.has(key)) continue;
      emitted.add(key);
      const g = groups.get(key) as { because: Provenance[] };
      const chain = rule.direction === 'ingress' ? IPTABLES_CHAINS.ingress : IPTABLES_CHAINS.egress;
      const side = rule.direction === 'ingress' ? 'src' : 'dst';
      const why = comment(`${describeRule(dedupe(g.because))} (ipset ${set.name}, ${set.cidrs.length} CIDRs)`);
      lines.push([`-A ${chain} -m set --match-set ${set.name} ${side}`, match, why, '-j ACCEPT'].filter((s) => s !== '').join(' '));
    }
  }
  return { lines, sets: [...asSet.values()] };
}

function dedupe(list: readonly Provenance[]): Provenance[] {
  const map = new Map<string, Provenance>();
  for (const p of list) map.set(`${p.role}\u0000${p.service ?? ''}\u0000${p.reason}`, p);
  return [...map.values()];
}

/**
 * `ipset restore` input for the sets: create (hash:net, the family's), flush, then add every
 * CIDR. Loaded with `ipset -exist restore`, so loading it again (a reload) refills the same sets.
 */
export function renderIpsets(host: string, sets: readonly IpsetSpec[]): string {
  const out = [
    `# twinwall address sets for host ${host} (ipset restore): load before rules.v4 and rules.v6, which match them.`,
    '# Rendered from the host policy: change the roles, not this file.',
  ];
  for (const set of sets) {
    const maxelem = Math.max(IPSET_DEFAULT_MAXELEM, set.cidrs.length);
    out.push(`create ${set.name} hash:net family ${set.family === 4 ? 'inet' : 'inet6'} hashsize 1024 maxelem ${maxelem}`);
    out.push(`flush ${set.name}`);
    for (const c of set.cidrs) out.push(`add ${set.name} ${c.text}`);
  }
  return `${out.join('\n')}\n`;
}

/** A chain that logs (rate-limited) and then drops, or accepts in audit mode. */
function verdictChain(chain: string, prefix: string, audit: boolean, uid: boolean): string[] {
  const limit = audit
    ? `-m hashlimit --hashlimit-upto ${AUDIT_LOG_LIMIT.rate} --hashlimit-burst ${AUDIT_LOG_LIMIT.burst} --hashlimit-mode ${AUDIT_LOG_LIMIT.mode} --hashlimit-name ${chain} --hashlimit-htable-expire ${AUDIT_LOG_LIMIT.expireMs}`
    : `-m limit --limit ${LOG_LIMIT.rate} --limit-burst ${LOG_LIMIT.burst}`;
  const log = `${limit} -j LOG --log-prefix "${prefix}"${uid ? ' --log-uid' : ''}`;
  return [`-A ${chain} ${log}`, `-A ${chain} -j ${audit ? 'ACCEPT' : 'DROP'}`];
}

function icmp6(type: string, extra = ''): string {
  return `-p ipv6-icmp -m icmp6 --icmpv6-type ${type}${extra}`;
}

const HL255 = ' -m hl --hl-eq 255';
const HL1 = ' -m hl --hl-eq 1';

/** RFC 4890 neighbour discovery: RS, RA, NS, NA, redirect — only from on-link (hop limit 255). */
const ND_TYPES: readonly [string, string][] = [
  ['133', 'router solicitation'],
  ['134', 'router advertisement'],
  ['135', 'neighbour solicitation'],
  ['136', 'neighbour advertisement'],
  ['137', 'redirect'],
];

/** RFC 4890 multicast listener discovery, link-local only (hop limit 1). */
const MLD_TYPES: readonly [string, string][] = [
  ['130', 'MLD query'],
  ['131', 'MLDv1 report'],
  ['132', 'MLDv1 done'],
  ['143', 'MLDv2 report'],
];

/** RFC 4890 errors a host must receive (path MTU discovery needs packet-too-big). */
const ICMP6_ERRORS: readonly [string, string][] = [
  ['1', 'destination unreachable'],
  ['2', 'packet too big (path MTU discovery)'],
  ['3/0', 'hop limit exceeded in transit'],
  ['4/1', 'parameter problem: unknown next header'],
  ['4/2', 'parameter problem: unknown IPv6 option'],
];

function renderFamily(policy: HostPolicy, family: Family, section: PolicySection): string {
  const { audit, instanceMetadata } = policy.options;
  const C = IPTABLES_CHAINS;
  const v6 = family === 6;
  const ip = v6 ? 'IPv6' : 'IPv4';
  const imds = AWS_LINK_LOCAL.instanceMetadata[family];
  const imdsCidr = `${imds}/${v6 ? 128 : 32}`;
  const imdsChain = instanceMetadata !== 'all-users';

  const chains: string[] = [C.ingress, C.egress, C.ingressInvalid, C.ingressDrop, C.egressSpoofed, C.egressInvalid];
  if (imdsChain) chains.push(C.egressMetadata);
  chains.push(C.egressDrop, C.forwardDrop);

  const out: string[] = [];
  const line = (s: string): void => {
    out.push(s);
  };

  line(`# twinwall host wall for host ${policy.name}, ${ip} (iptables-restore, filter table).`);
  line('# Rendered from the host policy: change the roles, not this file.');
  if (audit) {
    line('# AUDIT MODE: every packet the enforcing rules would drop is logged ("twinwall ... audit ...")');
    line('# and accepted. That includes INVALID packets and packets with a forged source address:');
    line('# audit mode promises to change no traffic at all, so switching it on can never break a');
    line('# host, and the log shows exactly what enforcement would stop. The built-in policies stay');
    line('# DROP, but every chain ends in LOG + ACCEPT before a policy is reached.');
  }
  line('*filter');
  line(':INPUT DROP [0:0]');
  line(':FORWARD DROP [0:0]');
  line(':OUTPUT DROP [0:0]');
  for (const c of chains) line(`:${c} - [0:0]`);

  // ---- INPUT
  line('# Inbound');
  line(`-A INPUT -i lo ${comment('twinwall: loopback')} -j ACCEPT`);
  if (v6) {
    for (const [t, what] of ND_TYPES) line(`-A INPUT ${icmp6(t, HL255)} ${comment(`twinwall: ${what} from on-link only (RFC 4890)`)} -j ACCEPT`);
    for (const [t, what] of MLD_TYPES) line(`-A INPUT -s fe80::/10 ${icmp6(t, HL1)} ${comment(`twinwall: ${what}, link-local (RFC 4890)`)} -j ACCEPT`);
    for (const [t, what] of ICMP6_ERRORS) line(`-A INPUT ${icmp6(t)} ${comment(`twinwall: ${what} (RFC 4890)`)} -j ACCEPT`);
  }
  line(`-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED ${comment(`twinwall: replies, and ICMP errors about our connections (path MTU)`)} -j ACCEPT`);
  line(`-A INPUT -m conntrack --ctstate INVALID ${comment('twinwall: conntrack says INVALID')} -j ${C.ingressInvalid}`);
  if (v6) line(`-A INPUT -d fe80::/10 -p udp -m udp --sport 547 --dport 546 ${comment('twinwall: DHCPv6 server replies, so leases renew')} -j ACCEPT`);
  else line(`-A INPUT -p udp -m udp --sport 67 --dport 68 ${comment('twinwall: DHCP server replies, so leases renew')} -j ACCEPT`);
  line(`-A INPUT ${comment('twinwall: what the roles accept')} -j ${C.ingress}`);
  line(`-A INPUT ${comment('twinwall: nothing else comes in')} -j ${C.ingressDrop}`);

  // ---- FORWARD
  line('# Forwarded (a host is not a router)');
  line(`-A FORWARD ${comment('twinwall: this host forwards nothing')} -j ${C.forwardDrop}`);

  // ---- OUTPUT
  line('# Outbound');
  line(`-A OUTPUT -o lo ${comment('twinwall: loopback')} -j ACCEPT`);
  if (v6) {
    line(`-A OUTPUT -s ::/128 -d ff02::1:ff00:0/104 ${icmp6('135', HL255)} ${comment('twinwall: duplicate address detection (source ::)')} -j ACCEPT`);
    line(`-A OUTPUT -s ::/128 -d ff02::2/128 ${icmp6('133', HL255)} ${comment('twinwall: router solicitation before an address is ready')} -j ACCEPT`);
    line(`-A OUTPUT -s ::/128 -d ff02::16/128 ${icmp6('143', HL1)} ${comment('twinwall: MLDv2 report before an address is ready')} -j ACCEPT`);
  } else {
    line(`-A OUTPUT -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 ${comment('twinwall: DHCP discover before the host has an address')} -j ACCEPT`);
  }
  line(`-A OUTPUT -m addrtype ! --src-type LOCAL ${comment('twinwall: source address is not this host (forged)')} -j ${C.egressSpoofed}`);
  if (v6) {
    for (const [t, what] of ND_TYPES) line(`-A OUTPUT ${icmp6(t, HL255)} ${comment(`twinwall: ${what} (RFC 4890)`)} -j ACCEPT`);
    for (const [t, what] of MLD_TYPES.filter(([t]) => t !== '130')) {
      line(`-A OUTPUT -d ff02::/16 ${icmp6(t, HL1)} ${comment(`twinwall: ${what}, link-local (RFC 4890)`)} -j ACCEPT`);
    }
  }
  line(`-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED ${comment('twinwall: replies, and ICMP errors about our connections')} -j ACCEPT`);
  line(`-A OUTPUT -m conntrack --ctstate INVALID ${comment('twinwall: conntrack says INVALID')} -j ${C.egressInvalid}`);
  if (v6) line(`-A OUTPUT -p udp -m udp --sport 546 --dport 547 ${comment('twinwall: DHCPv6 client, so leases renew')} -j ACCEPT`);
  else line(`-A OUTPUT -p udp -m udp --sport 68 --dport 67 ${comment('twinwall: DHCP client, so leases renew')} -j ACCEPT`);
  switch (instanceMetadata) {
    case 'root-only':
      line(`-A OUTPUT -d ${imdsCidr} -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -m conntrack --ctstate NEW ${comment('twinwall: instance metadata, root only (instanceMetadata root-only)')} -j ACCEPT`);
      line(`-A OUTPUT -d ${imdsCidr} ${comment('twinwall: instance metadata, anyone but root')} -j ${C.egressMetadata}`);
      break;
    case 'none':
      line(`-A OUTPUT -d ${imdsCidr} ${comment('twinwall: instance metadata, nobody (instanceMetadata none)')} -j ${C.egressMetadata}`);
      break;
    case 'all-users':
      line(`-A OUTPUT -d ${imdsCidr} -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW ${comment('twinwall: instance metadata, every user (instanceMetadata all-users)')} -j ACCEPT`);
      break;
  }
  line(`-A OUTPUT ${comment('twinwall: what the roles send')} -j ${C.egress}`);
  line(`-A OUTPUT ${comment('twinwall: nothing else goes out')} -j ${C.egressDrop}`);

  // ---- the policy
  line('# The policy: one ACCEPT per rule and host CIDR, in the policy\'s canonical order');
  for (const l of section.lines) line(l);

  // ---- log, then drop (or accept in audit mode)
  line(audit ? '# Log, then accept (audit mode)' : '# Log, then drop');
  const verdict: Verdict = audit ? 'audit' : 'drop';
  out.push(...verdictChain(C.ingressInvalid, logPrefix('ingress', verdict, 'inv'), audit, false));
  out.push(...verdictChain(C.ingressDrop, logPrefix('ingress', verdict), audit, false));
  out.push(...verdictChain(C.egressSpoofed, logPrefix('egress', verdict, 'spoof'), audit, true));
  out.push(...verdictChain(C.egressInvalid, logPrefix('egress', verdict, 'inv'), audit, true));
  if (imdsChain) out.push(...verdictChain(C.egressMetadata, logPrefix('egress', verdict, 'imds'), audit, true));
  out.push(...verdictChain(C.egressDrop, logPrefix('egress', verdict), audit, true));
  out.push(...verdictChain(C.forwardDrop, logPrefix('forward', verdict), audit, false));
  line('COMMIT');
  return `${out.join('\n')}\n`;
}

/**
 * Render a host policy as iptables-restore text for IPv4 and IPv6. The policy's rules appear in
 * `policy.rules` order; a rule with no host CIDR of a family is absent from that family's table.
 * Address sets above `ipsetThreshold` CIDRs become ipsets (`ipsets` holds their restore input).
 */
export function renderIptables(policy: HostPolicy, options: IptablesRenderOptions = {}): IptablesRuleset {
  const threshold = options.ipsetThreshold ?? DEFAULT_IPSET_THRESHOLD;
  if (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 1 || (Number.isFinite(threshold) && !Number.isInteger(threshold))) {
    throw new TwinwallError('OPTION_INVALID', {
      value: threshold,
      path: [policy.name],
      problem: `ipsetThreshold ${show(threshold)} is not a whole number of at least 1 (or Infinity).`,
      fix: `leave it out (default ${DEFAULT_IPSET_THRESHOLD}), give a whole number such as 32, or Infinity to keep every rule linear.`,
    });
  }
  const s4 = policySection(policy, 4, threshold);
  const s6 = policySection(policy, 6, threshold);
  const v4 = renderFamily(policy, 4, s4);
  const v6 = renderFamily(policy, 6, s6);
  const sets = [...s4.sets, ...s6.sets];
  return Object.freeze(sets.length === 0 ? { v4, v6 } : { v4, v6, ipsets: renderIpsets(policy.name, sets) });
}
