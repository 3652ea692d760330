/**
 * The host wall: a host policy rendered as iptables-restore text (filter table), one document
 * for IPv4 and one for IPv6. Pure: no I/O, no cdktf; the same policy always gives the same bytes.
 *
 * Layout of each document (top to bottom is the order packets meet the rules):
 *
 *   INPUT   loopback → [IPv6: neighbour discovery, MLD, ICMPv6 errors (RFC 4890)] →
 *           replies (ESTABLISHED,RELATED) → INVALID → DHCP client → tw-in (the policy) → log, drop
 *   OUTPUT  loopback → what only routers send (IPv6 RA and redirect, ICMP redirect): log, drop →
 *           [unspecified-source exceptions: DHCPDISCOVER / IPv6 DAD, RS, MLD] →
 *           forged source (loopback range, or not a local address) → [IPv6: ND, MLD] → replies →
 *           INVALID → DHCP client (to where a DHCP server can be) → instance metadata →
 *           tw-out (the policy) → log, drop
 *   FORWARD log, drop (a host is not a router)
 *
 * Every terminal decision other than the policy's own ACCEPTs goes through a small chain that
 * logs (rate-limited, with a prefix naming direction and reason) and then drops — or, in audit
 * mode, accepts. Built-in policies are DROP in the file itself, so there is no open window while
 * the rules load. No interface is named except `lo`: EC2 interface names vary (eth0, ens5 …).
 *
 * `renderFallback` renders, from the same policy and the same rule builders, the fallback each
 * family gets before its real table (docs/user-data.md, "When loading fails").
 */
import { Cidr, Family } from '../address';
import { Direction } from '../flow';
import { AWS_LINK_LOCAL } from '../peer';
import { TwinwallError, show } from '../errors';
import { checkName } from '../flow';
import { HostPolicy, PolicyRule, Provenance, ResolvedHostPolicyOptions, subnetRouter, uniqueProvenance } from '../policy';
import { Port, portSlug } from '../port';
import { Memo } from '../memo';
import { cutText } from '../text';
import { Verdict, VerdictReason, logPrefix } from '../log-prefix';
import { ownRuleComment, provenanceComment } from '../provenance';

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

/** iptables' comment match keeps at most 255 bytes. */
export const COMMENT_MAX = 255;
/**
 * Rate limit of every enforcing LOG rule: enough to see an attack, too little to fill a disk.
 * Audit mode, which exists to learn from (`twinwall learn`), logs every connection once instead
 * (AUDIT_LOGGED_MARK), so every distinct flow reaches the log however busy the host, a scan
 * shows as many flows, and one chatty flow is one line.
 */
export const LOG_LIMIT = { rate: '10/min', burst: 20 } as const;

/**
 * Audit mode marks a connection once it has been logged, in this bit of its conntrack mark, so
 * each connection is logged once however many packets it sends, with no table of its own (the
 * connection-tracking entry carries the bit). Other bits of the mark are left alone.
 */
export const AUDIT_LOGGED_MARK = '0x10000000';

export { LOG_PREFIX_MAX, logPrefix } from '../log-prefix';
export type { Verdict, VerdictReason } from '../log-prefix';

/** A log-and-drop chain: the direction and reason its LOG prefix names, and whether it logs the sender's uid. */
export interface VerdictChain {
  readonly chain: string;
  readonly direction: Direction | 'forward';
  readonly reason?: VerdictReason;
  /** Outbound packets carry the uid of the socket that sent them (`--log-uid`). */
  readonly uid: boolean;
}

/**
 * The log-and-drop chains of a host wall, in the order they are written. The metadata chain
 * exists only when metadata access is narrowed (`instanceMetadata` other than 'all-users').
 */
export function verdictChains(policy: { readonly options: Pick<ResolvedHostPolicyOptions, 'instanceMetadata'> }): readonly VerdictChain[] {
  const C = IPTABLES_CHAINS;
  const all: VerdictChain[] = [
    { chain: C.ingressInvalid, direction: 'ingress', reason: 'inv', uid: false },
    { chain: C.ingressDrop, direction: 'ingress', uid: false },
    { chain: C.egressSpoofed, direction: 'egress', reason: 'spoof', uid: true },
    { chain: C.egressInvalid, direction: 'egress', reason: 'inv', uid: true },
    { chain: C.egressMetadata, direction: 'egress', reason: 'imds', uid: true },
    { chain: C.egressDrop, direction: 'egress', uid: true },
    { chain: C.forwardDrop, direction: 'forward', uid: false },
  ];
  return all.filter((v) => v.chain !== C.egressMetadata || policy.options.instanceMetadata !== 'all-users');
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

/** Text commentText keeps unchanged: printable ASCII but `"` and `\`. */
const COMMENT_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * Make text safe inside `--comment "…"` (and nftables' `comment "…"`): printable ASCII only (a few
 * typographic characters are transliterated, the rest become `?`), no double quotes or backslashes
 * (the restore parser would read them as quoting), at most `max` bytes (default 255, iptables'
 * limit; nftables keeps 128).
 */
export function commentText(text: string, max: number = COMMENT_MAX): string {
  const folded = text.replace(/\s+/g, ' ').trim();
  // Most comments are plain already (printable ASCII, no quote or backslash): kept as they are.
  if (COMMENT_PLAIN.test(folded)) return cutText(folded, max, true);
  let out = '';
  for (const ch of folded) {
    const mapped = TRANSLITERATE[ch];
    if (mapped !== undefined) out += mapped;
    else if (ch >= ' ' && ch <= '~') out += ch;
    else out += '?';
  }
  return cutText(out, max, true);
}

function comment(text: string): string {
  return `-m comment --comment "${commentText(text)}"`;
}

/**
 * A TCP/UDP rule's destination ports as a backend writes them: "22", or a range joined by
 * `separator` ("8000:8999" for iptables, "8000-8999" for nftables); undefined for all ports.
 */
export function destinationPorts(port: Port, separator: ':' | '-'): string | undefined {
  if (port.isAll) return undefined;
  const from = port.from as number;
  const to = port.to as number;
  return from === to ? `${from}` : `${from}${separator}${to}`;
}

function portMatch(rule: PolicyRule, family: Family): string | undefined {
  const port = rule.port;
  switch (port.protocol) {
    case 'tcp':
    case 'udp': {
      const ports = destinationPorts(port, ':');
      const dport = ports === undefined ? '' : ` -m ${port.protocol} --dport ${ports}`;
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
  return [`-A ${chain}`, c.isAny ? '' : `${side} ${c.text}`, match, comment(provenanceComment(rule.because)), '-j ACCEPT'].filter((s) => s !== '').join(' ');
}

/** One ipset of a host wall: a name, its family, and its CIDRs in canonical order. */
export interface IpsetSpec {
  readonly name: string;
  readonly family: Family;
  readonly cidrs: readonly Cidr[];
}

/** "tcp-22", "udp-1024-65535", "tcp-all", "icmp-3", "icmp-3-4", "icmp-all", "all". */
function matchSlug(rule: PolicyRule): string {
  return portSlug(rule.port, { compact: true });
}

/**
 * What an ipset name may be in twinwall's output: a letter, then letters, digits, ".", "_" or "-",
 * at most 31 characters (ipset's limit). The names twinwall makes (ipsetName) always are.
 */
export const IPSET_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,30}$/;

/** The set's name: "tw4-in-tcp-22" (family, direction, match); at most 23 of ipset's 31 characters. */
export function ipsetName(family: Family, direction: Direction, rule: PolicyRule): string {
  return `tw${family}-${direction === 'ingress' ? 'in' : 'out'}-${matchSlug(rule)}`;
}

/** Whether a rule belongs in a family's host wall: ICMP only in IPv4's, ICMPv6 only in IPv6's. */
export function inFamily(rule: PolicyRule, family: Family): boolean {
  const protocol = rule.port.protocol;
  return !((protocol === 'icmp' && family === 6) || (protocol === 'icmpv6' && family === 4));
}

/**
 * One entry of a family's policy chains: an ACCEPT for one rule and one of its CIDRs, or, where
 * the address set of a (direction, match) is above the threshold, one ACCEPT matching the set.
 */
export type PolicyEntry =
  | { readonly kind: 'address'; readonly rule: PolicyRule; readonly cidr: Cidr }
  | { readonly kind: 'set'; readonly rule: PolicyRule; readonly set: IpsetSpec; readonly because: readonly Provenance[] };

/** The policy part of one family's host wall, the same for every backend (iptables + ipset, nftables). */
export interface PolicyLayout {
  readonly entries: readonly PolicyEntry[];
  readonly sets: readonly IpsetSpec[];
}

/**
 * The policy's entries in one family. Rules that share a direction and a protocol/port match form
 * one address set; a set of more than `threshold` CIDRs (0.0.0.0/0 and ::/0 aside: hash:net has no
 * /0, and they stay one entry each) becomes one set entry where its first rule was, the rest stay
 * one entry per rule and CIDR. Every entry is an ACCEPT, so order does not change what is
 * admitted; canonical order keeps the output stable.
 */
export function layoutPolicy(policy: HostPolicy, family: Family, threshold: number): PolicyLayout {
  const groups = new Map<string, { rule: PolicyRule; cidrs: Map<string, Cidr>; because: Provenance[] }>();
  for (const rule of policy.rules) {
    if (!inFamily(rule, family)) continue;
    const mine = rule.hostCidrs.filter((c) => c.family === family && !c.isAny);
    if (mine.length === 0) continue;
    const key = `${rule.direction}|${matchSlug(rule)}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { rule, cidrs: new Map(), because: [] }));
    for (const c of mine) g.cidrs.set(c.text, c);
    g.because.push(...rule.because);
  }
  const asSet = new Map<string, IpsetSpec>();
  for (const [key, g] of groups) {
    if (g.cidrs.size <= threshold) continue;
    const cidrs = [...g.cidrs.values()].sort((a, b) => (a.network !== b.network ? (a.network < b.network ? -1 : 1) : a.prefix - b.prefix));
    asSet.set(key, { name: ipsetName(family, g.rule.direction, g.rule), family, cidrs });
  }
  const entries: PolicyEntry[] = [];
  const emitted = new Set<string>();
  for (const rule of policy.rules) {
    if (!inFamily(rule, family)) continue;
    const key = `${rule.direction}|${matchSlug(rule)}`;
    const set = asSet.get(key);
    for (const cidr of rule.hostCidrs) {
      if (cidr.family !== family) continue;
      if (set === undefined || cidr.isAny) {
        entries.push({ kind: 'address', rule, cidr });
        continue;
      }
      if (emitted.has(key)) continue;
      emitted.add(key);
      entries.push({ kind: 'set', rule, set, because: uniqueProvenance((groups.get(key) as { because: Provenance[] }).because, { keepOrder: true }) });
    }
  }
  return { entries, sets: [...asSet.values()] };
}

interface PolicySection {
  readonly lines: string[];
  readonly sets: readonly IpsetSpec[];
}

/** The policy's iptables lines in one family (layoutPolicy, written as `-A tw-in|tw-out …`). */
function policySection(policy: HostPolicy, family: Family, threshold: number): PolicySection {
  const layout = layoutPolicy(policy, family, threshold);
  const lines = layout.entries.map((e) => {
    const match = portMatch(e.rule, family) as string;
    if (e.kind === 'address') return policyLine(e.rule, match, e.cidr);
    const chain = e.rule.direction === 'ingress' ? IPTABLES_CHAINS.ingress : IPTABLES_CHAINS.egress;
    const side = e.rule.direction === 'ingress' ? 'src' : 'dst';
    const why = comment(`${provenanceComment(e.because)} (ipset ${e.set.name}, ${e.set.cidrs.length} CIDRs)`);
    return [`-A ${chain} -m set --match-set ${e.set.name} ${side}`, match, why, '-j ACCEPT'].filter((s) => s !== '').join(' ');
  });
  return { lines, sets: layout.sets };
}

/**
 * `ipset restore` input for the sets: create (hash:net, the family's), flush, then add every
 * CIDR. Loaded with `ipset -exist restore`, so loading it again (a reload) refills the same sets.
 */
export function renderIpsets(host: string, sets: readonly IpsetSpec[]): string {
  // Every name lands in `ipset restore` input, one command per line: validated, so no name can
  // end a line and add a command (or a comment line a second one).
  checkName(host, 'The host name');
  if (!Array.isArray(sets)) throw new TwinwallError('OPTION_INVALID', { value: sets, problem: `the ipsets ${show(sets)} are not a list.`, fix: 'pass IpsetSpec objects: { name, family, cidrs }.' });
  for (const set of sets) {
    if (typeof set?.name !== 'string' || !IPSET_NAME.test(set.name)) {
      throw new TwinwallError('NAME_INVALID', {
        value: set?.name,
        path: [host],
        problem: `the ipset name ${show(set?.name)} is not a short identifier an ipset restore file can hold.`,
        fix: 'use 1–31 characters: a letter, then letters, digits, ".", "_" or "-" (e.g. "tw4-in-tcp-22", as ipsetName() makes).',
      });
    }
    if ((set.family !== 4 && set.family !== 6) || !Array.isArray(set.cidrs) || !set.cidrs.every((c: unknown) => c instanceof Cidr && c.family === set.family)) {
      throw new TwinwallError('OPTION_INVALID', {
        value: set.name,
        path: [host],
        problem: `the ipset ${show(set.name)} is not a family (4 or 6) with a list of Cidr values of that family.`,
        fix: 'build its CIDRs with Cidr.of("198.51.100.0/24") (all of the set\'s family).',
      });
    }
  }
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

/**
 * A chain that logs (rate-limited) and then drops, or in audit mode logs each connection once
 * and accepts. Audit mode uses no match that can refuse a packet: hashlimit drops a packet when
 * its table is full (xt_hashlimit.c: `max count of %u reached`, then `hotdrop`), which a scan
 * fills; connmark and CONNMARK only read and set the connection's mark, and limit only stops
 * matching. Packets conntrack does not track (INVALID) have no mark: one rate-limited line.
 */
function verdictChain(chain: string, prefix: string, audit: boolean, uid: boolean): string[] {
  const log = (match: string): string => `-A ${chain} ${match} -j LOG --log-prefix "${prefix}"${uid ? ' --log-uid' : ''}`;
  const limit = `-m limit --limit ${LOG_LIMIT.rate} --limit-burst ${LOG_LIMIT.burst}`;
  if (!audit) return [log(limit), `-A ${chain} -j DROP`];
  return [
    log(`-m connmark --mark 0x0/${AUDIT_LOGGED_MARK}`),
    log(`-m conntrack --ctstate INVALID,UNTRACKED ${limit}`),
    `-A ${chain} -j CONNMARK --set-xmark ${AUDIT_LOGGED_MARK}/${AUDIT_LOGGED_MARK}`,
    `-A ${chain} -j ACCEPT`,
  ];
}

/** An ICMPv6 type (and code) a host wall admits, with what it is for. */
export interface Icmpv6Kind {
  readonly type: number;
  readonly code?: number;
  readonly what: string;
}

/** Hop limit of neighbour discovery: 255, so it was sent on-link (RFC 4861). */
export const ND_HOP_LIMIT = 255;
/** Hop limit of multicast listener discovery: 1, link-local (RFC 3810). */
export const MLD_HOP_LIMIT = 1;

/** RFC 4890 neighbour discovery a host receives: RS, RA, NS, NA, redirect — only from on-link (hop limit 255). */
export const ICMPV6_NEIGHBOUR_DISCOVERY: readonly Icmpv6Kind[] = [
  { type: 133, what: 'router solicitation' },
  { type: 134, what: 'router advertisement' },
  { type: 135, what: 'neighbour solicitation' },
  { type: 136, what: 'neighbour advertisement' },
  { type: 137, what: 'redirect' },
];

/**
 * Neighbour discovery a host sends: router and neighbour solicitations, neighbour advertisements.
 * Router advertisements and redirects are a router's (ROUTER_ONLY).
 */
export const ICMPV6_NEIGHBOUR_DISCOVERY_SENT: readonly Icmpv6Kind[] = ICMPV6_NEIGHBOUR_DISCOVERY.filter((k) => k.type !== 134 && k.type !== 137);

/**
 * What only a router sends, dropped on the way out (logged as an egress drop): IPv6 router
 * advertisements and redirects, IPv4 ICMP redirects. Before the replies rule, because the kernel
 * tracks a redirect about a forwarded packet as RELATED to that packet's connection.
 */
export const ROUTER_ONLY: Readonly<Record<Family, readonly Icmpv6Kind[]>> = {
  4: [{ type: 5, what: 'ICMP redirect' }],
  6: ICMPV6_NEIGHBOUR_DISCOVERY.filter((k) => k.type === 134 || k.type === 137),
};

/** The loopback range: a packet with such a source leaving by any other interface is forged. */
export const LOOPBACK_SOURCES: Readonly<Record<Family, string>> = { 4: '127.0.0.0/8', 6: '::1/128' };

/** RFC 4890 multicast listener discovery, link-local only (hop limit 1). A host sends no queries. */
export const ICMPV6_LISTENER_DISCOVERY: readonly (Icmpv6Kind & { readonly query?: true })[] = [
  { type: 130, what: 'MLD query', query: true },
  { type: 131, what: 'MLDv1 report' },
  { type: 132, what: 'MLDv1 done' },
  { type: 143, what: 'MLDv2 report' },
];

/** RFC 4890 errors a host must receive (path MTU discovery needs packet-too-big). */
export const ICMPV6_ERRORS: readonly Icmpv6Kind[] = [
  { type: 1, what: 'destination unreachable' },
  { type: 2, what: 'packet too big (path MTU discovery)' },
  { type: 3, code: 0, what: 'hop limit exceeded in transit' },
  { type: 4, code: 1, what: 'parameter problem: unknown next header' },
  { type: 4, code: 2, what: 'parameter problem: unknown IPv6 option' },
];

/** The DHCP client's and server's UDP ports per family (RFC 2131; DHCPv6, RFC 8415). */
export const DHCP_PORTS = { 4: { client: 68, server: 67 }, 6: { client: 546, server: 547 } } as const;

/**
 * Packets a host sends before it has an address of its own, so from the unspecified address:
 * they come before the forged-source drop, to exactly these destinations.
 */
export const UNSPECIFIED_SOURCE = {
  4: { source: '0.0.0.0/32', dhcpDiscover: '255.255.255.255/32' },
  6: {
    source: '::/128',
    exceptions: [
      { destination: 'ff02::1:ff00:0/104', type: 135, hopLimit: ND_HOP_LIMIT, what: 'duplicate address detection (source ::)' },
      { destination: 'ff02::2/128', type: 133, hopLimit: ND_HOP_LIMIT, what: 'router solicitation before an address is ready' },
      { destination: 'ff02::16/128', type: 143, hopLimit: MLD_HOP_LIMIT, what: 'MLDv2 report before an address is ready' },
    ],
  },
} as const;

/**
 * Where a DHCP server can be, so where the host's DHCP client may send: IPv4 broadcast, plus each
 * declared subnet's router (base + 1: EC2's DHCP server answers unicast renewals there); DHCPv6's
 * All_DHCP_Relay_Agents_and_Servers group and link-local servers. Nowhere else: a process
 * allowed to bind the client port must not reach the metadata service or the Internet on it.
 */
export function dhcpDestinations(options: Pick<ResolvedHostPolicyOptions, 'subnets'>, family: Family): { readonly cidr: string; readonly what: string }[] {
  if (family === 6) {
    return [
      { cidr: 'ff02::1:2/128', what: 'All_DHCP_Relay_Agents_and_Servers' },
      { cidr: IPV6_LINK_LOCAL, what: 'a link-local server' },
    ];
  }
  return [
    { cidr: UNSPECIFIED_SOURCE[4].dhcpDiscover, what: 'broadcast' },
    ...options.subnets.map((s) => ({ cidr: subnetRouter(Cidr.ipv4(s)).text, what: `the router of subnet ${s}` })),
  ];
}

/** The instance metadata service's port (tcp) at AWS_LINK_LOCAL.instanceMetadata. */
export const INSTANCE_METADATA_PORT = 80;

/** IPv6 link-local unicast (DHCPv6 replies come to it, MLD from it) and link-scope multicast. */
export const IPV6_LINK_LOCAL = 'fe80::/10';
export const IPV6_LINK_SCOPE_MULTICAST = 'ff02::/16';

function icmp6(kind: { readonly type: number; readonly code?: number }, hopLimit?: number): string {
  const type = kind.code === undefined ? `${kind.type}` : `${kind.type}/${kind.code}`;
  return `-p ipv6-icmp -m icmp6 --icmpv6-type ${type}${hopLimit === undefined ? '' : ` -m hl --hl-eq ${hopLimit}`}`;
}

/** An ICMP (IPv4) or ICMPv6 type match of one family. */
function icmpOf(family: Family, kind: { readonly type: number; readonly code?: number }): string {
  if (family === 6) return icmp6(kind);
  return `-p icmp -m icmp --icmp-type ${kind.code === undefined ? `${kind.type}` : `${kind.type}/${kind.code}`}`;
}

/** One rule line: `-A chain match [comment] -j target` (the fallback has no comments). */
function ruleLine(chain: string, match: string, target: string, why: string | undefined): string {
  return [`-A ${chain}`, match, why === undefined ? '' : comment(why), `-j ${target}`].filter((s) => s !== '').join(' ');
}

/**
 * The DHCP client rules of one family: server replies in, requests out to `dhcpDestinations`
 * only. (IPv4's first DHCPDISCOVER, from 0.0.0.0, is its own rule: it must come before the
 * forged-source drop.)
 */
function dhcpLines(options: Pick<ResolvedHostPolicyOptions, 'subnets'>, family: Family, comments: boolean): { input: string[]; output: string[] } {
  const { client, server } = DHCP_PORTS[family];
  const why = (text: string): string | undefined => (comments ? ownRuleComment(text) : undefined);
  const v = family === 6 ? 'DHCPv6' : 'DHCP';
  const input = [ruleLine('INPUT', `${family === 6 ? `-d ${IPV6_LINK_LOCAL} ` : ''}-p udp -m udp --sport ${server} --dport ${client}`, 'ACCEPT', why(`${v} server replies, so leases renew`))];
  const output = dhcpDestinations(options, family).map((d) => ruleLine('OUTPUT', `-d ${d.cidr} -p udp -m udp --sport ${client} --dport ${server}`, 'ACCEPT', why(`${v} client to ${d.what} only, so leases renew`)));
  return { input, output };
}

/** IPv4 DHCPDISCOVER: the client has no address yet, so it sends from 0.0.0.0 to broadcast. */
function dhcpDiscover(comments: boolean): string {
  const u = UNSPECIFIED_SOURCE[4];
  const { client, server } = DHCP_PORTS[4];
  return ruleLine('OUTPUT', `-s ${u.source} -d ${u.dhcpDiscover} -p udp -m udp --sport ${client} --dport ${server}`, 'ACCEPT', comments ? ownRuleComment('DHCP discover before the host has an address') : undefined);
}

/** What a family's table depends on besides the host's name and its policy: familyLines takes these options and no other. */
type FamilyOptions = Pick<ResolvedHostPolicyOptions, 'audit' | 'instanceMetadata' | 'subnets'>;

/** The lines around the policy's, shared by the hosts with the same family and FamilyOptions (lib/memo.ts). */
const FAMILY_LINES = new Memo<{ readonly head: readonly string[]; readonly tail: readonly string[] }>();

function renderFamily(host: string, options: FamilyOptions, family: Family, section: PolicySection): string {
  const used: FamilyOptions = { audit: options.audit, instanceMetadata: options.instanceMetadata, subnets: options.subnets };
  const { head, tail } = FAMILY_LINES.get(`${family}\u0000${used.audit}\u0000${used.instanceMetadata}\u0000${used.subnets.join(' ')}`, () => familyLines(used, family));
  const first = `# twinwall host wall for host ${host}, ${family === 6 ? 'IPv6' : 'IPv4'} (iptables-restore, filter table).`;
  return `${[first, ...head, ...section.lines, ...tail].join('\n')}\n`;
}

/** A family's table but its first line (which names the host) and the policy's lines, which go between `head` and `tail`. */
function familyLines(options: FamilyOptions, family: Family): { readonly head: readonly string[]; readonly tail: readonly string[] } {
  const { audit, instanceMetadata } = options;
  const C = IPTABLES_CHAINS;
  const v6 = family === 6;
  const imds = AWS_LINK_LOCAL.instanceMetadata[family];
  const imdsCidr = `${imds}/${v6 ? 128 : 32}`;
  const verdicts = verdictChains({ options });
  const chains: string[] = [C.ingress, C.egress, ...verdicts.map((v) => v.chain)];

  const out: string[] = [];
  const line = (s: string): void => {
    out.push(s);
  };

  line('# Rendered from the host policy: change the roles, not this file.');
  if (audit) {
    line('# AUDIT MODE: every packet the enforcing rules would drop is logged ("twinwall ... audit ...")');
    line('# and accepted. That includes INVALID packets and packets with a forged source address:');
    line('# audit mode promises to change no traffic at all, so switching it on can never break a');
    line('# host, and the log shows exactly what enforcement would stop. The built-in policies stay');
    line('# DROP, but every chain ends in LOG + ACCEPT before a policy is reached. Each connection');
    line(`# is logged once (its conntrack mark gets bit ${AUDIT_LOGGED_MARK}); no match here can refuse a packet.`);
  }
  line('*filter');
  line(':INPUT DROP [0:0]');
  line(':FORWARD DROP [0:0]');
  line(':OUTPUT DROP [0:0]');
  for (const c of chains) line(`:${c} - [0:0]`);

  // ---- INPUT
  line('# Inbound');
  line(`-A INPUT -i lo ${comment(ownRuleComment('loopback'))} -j ACCEPT`);
  if (v6) {
    for (const k of ICMPV6_NEIGHBOUR_DISCOVERY) line(`-A INPUT ${icmp6(k, ND_HOP_LIMIT)} ${comment(ownRuleComment(`${k.what} from on-link only (RFC 4890)`))} -j ACCEPT`);
    for (const k of ICMPV6_LISTENER_DISCOVERY) line(`-A INPUT -s ${IPV6_LINK_LOCAL} ${icmp6(k, MLD_HOP_LIMIT)} ${comment(ownRuleComment(`${k.what}, link-local (RFC 4890)`))} -j ACCEPT`);
    for (const k of ICMPV6_ERRORS) line(`-A INPUT ${icmp6(k)} ${comment(ownRuleComment(`${k.what} (RFC 4890)`))} -j ACCEPT`);
  }
  line(`-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED ${comment(ownRuleComment(`replies, and ICMP errors about our connections (path MTU)`))} -j ACCEPT`);
  line(`-A INPUT -m conntrack --ctstate INVALID ${comment(ownRuleComment('conntrack says INVALID'))} -j ${C.ingressInvalid}`);
  const dhcp = dhcpLines(options, family, true);
  for (const l of dhcp.input) line(l);
  line(`-A INPUT ${comment(ownRuleComment('what the roles accept'))} -j ${C.ingress}`);
  line(`-A INPUT ${comment(ownRuleComment('nothing else comes in'))} -j ${C.ingressDrop}`);

  // ---- FORWARD
  line('# Forwarded (a host is not a router)');
  line(`-A FORWARD ${comment(ownRuleComment('this host forwards nothing'))} -j ${C.forwardDrop}`);

  // ---- OUTPUT
  line('# Outbound');
  line(`-A OUTPUT -o lo ${comment(ownRuleComment('loopback'))} -j ACCEPT`);
  for (const k of ROUTER_ONLY[family]) line(`-A OUTPUT ${icmpOf(family, k)} ${comment(ownRuleComment(`${k.what} out: a host is not a router`))} -j ${C.egressDrop}`);
  if (v6) {
    const u = UNSPECIFIED_SOURCE[6];
    for (const x of u.exceptions) line(`-A OUTPUT -s ${u.source} -d ${x.destination} ${icmp6(x, x.hopLimit)} ${comment(ownRuleComment(`${x.what}`))} -j ACCEPT`);
  } else {
    line(dhcpDiscover(true));
  }
  line(`-A OUTPUT -s ${LOOPBACK_SOURCES[family]} ${comment(ownRuleComment('loopback source on a real interface (forged)'))} -j ${C.egressSpoofed}`);
  line(`-A OUTPUT -m addrtype ! --src-type LOCAL ${comment(ownRuleComment('source address is not this host (forged)'))} -j ${C.egressSpoofed}`);
  if (v6) {
    for (const k of ICMPV6_NEIGHBOUR_DISCOVERY_SENT) line(`-A OUTPUT ${icmp6(k, ND_HOP_LIMIT)} ${comment(ownRuleComment(`${k.what} (RFC 4890)`))} -j ACCEPT`);
    for (const k of ICMPV6_LISTENER_DISCOVERY.filter((m) => m.query !== true)) {
      line(`-A OUTPUT -d ${IPV6_LINK_SCOPE_MULTICAST} ${icmp6(k, MLD_HOP_LIMIT)} ${comment(ownRuleComment(`${k.what}, link-local (RFC 4890)`))} -j ACCEPT`);
    }
  }
  line(`-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED ${comment(ownRuleComment('replies, and ICMP errors about our connections'))} -j ACCEPT`);
  line(`-A OUTPUT -m conntrack --ctstate INVALID ${comment(ownRuleComment('conntrack says INVALID'))} -j ${C.egressInvalid}`);
  for (const l of dhcp.output) line(l);
  switch (instanceMetadata) {
    case 'root-only':
      line(`-A OUTPUT -d ${imdsCidr} -p tcp -m tcp --dport ${INSTANCE_METADATA_PORT} -m owner --uid-owner 0 -m conntrack --ctstate NEW ${comment(ownRuleComment('instance metadata, root only (instanceMetadata root-only)'))} -j ACCEPT`);
      line(`-A OUTPUT -d ${imdsCidr} ${comment(ownRuleComment('instance metadata, anyone but root'))} -j ${C.egressMetadata}`);
      break;
    case 'none':
      line(`-A OUTPUT -d ${imdsCidr} ${comment(ownRuleComment('instance metadata, nobody (instanceMetadata none)'))} -j ${C.egressMetadata}`);
      break;
    case 'all-users':
      line(`-A OUTPUT -d ${imdsCidr} -p tcp -m tcp --dport ${INSTANCE_METADATA_PORT} -m conntrack --ctstate NEW ${comment(ownRuleComment('instance metadata, every user (instanceMetadata all-users)'))} -j ACCEPT`);
      break;
  }
  line(`-A OUTPUT ${comment(ownRuleComment('what the roles send'))} -j ${C.egress}`);
  line(`-A OUTPUT ${comment(ownRuleComment('nothing else goes out'))} -j ${C.egressDrop}`);

  // ---- the policy
  line('# The policy: one ACCEPT per rule and host CIDR, in the policy\'s canonical order');
  const head = Object.freeze(out.splice(0));

  // ---- log, then drop (or accept in audit mode)
  line(audit ? '# Log each connection once, then accept (audit mode)' : '# Log, then drop');
  const verdict: Verdict = audit ? 'audit' : 'drop';
  for (const v of verdicts) out.push(...verdictChain(v.chain, logPrefix(v.direction, verdict, v.reason), audit, v.uid));
  line('COMMIT');
  return { head, tail: Object.freeze(out) };
}

/**
 * Every host-wall renderer starts here: the policy must be a HostPolicy, and its name, which lands
 * in the rendered file's comment lines, is checked again (a forged object could carry any name,
 * a line break and a rule included).
 */
export function checkRenderable(policy: HostPolicy, renderer: string): void {
  if (!(policy instanceof HostPolicy)) {
    throw new TwinwallError('OPTION_INVALID', { value: typeof policy, problem: `the policy given to ${renderer} is not a HostPolicy (it is ${policy === null ? 'null' : typeof policy}).`, fix: 'build it with HostPolicy.compose(name, roles, options).' });
  }
  checkName(policy.name, 'The host name');
}

/**
 * The validated `ipsetThreshold` (default DEFAULT_IPSET_THRESHOLD): a whole number of at least 1,
 * or Infinity. Every backend's address sets use it, so they all switch to sets at the same size.
 */
export function setThreshold(policy: HostPolicy, options: IptablesRenderOptions): number {
  const threshold = options.ipsetThreshold ?? DEFAULT_IPSET_THRESHOLD;
  if (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 1 || (Number.isFinite(threshold) && !Number.isInteger(threshold))) {
    throw new TwinwallError('OPTION_INVALID', {
      value: threshold,
      path: [policy.name],
      problem: `ipsetThreshold ${show(threshold)} is not a whole number of at least 1 (or Infinity).`,
      fix: `leave it out (default ${DEFAULT_IPSET_THRESHOLD}), give a whole number such as 32, or Infinity to keep every rule linear.`,
    });
  }
  return threshold;
}

/**
 * Render a host policy as iptables-restore text for IPv4 and IPv6. The policy's rules appear in
 * `policy.rules` order; a rule with no host CIDR of a family is absent from that family's table.
 * Address sets above `ipsetThreshold` CIDRs become ipsets (`ipsets` holds their restore input).
 */
export function renderIptables(policy: HostPolicy, options: IptablesRenderOptions = {}): IptablesRuleset {
  checkRenderable(policy, 'renderIptables');
  const threshold = setThreshold(policy, options);
  const s4 = policySection(policy, 4, threshold);
  const s6 = policySection(policy, 6, threshold);
  const v4 = renderFamily(policy.name, policy.options, 4, s4);
  const v6 = renderFamily(policy.name, policy.options, 6, s6);
  const sets = [...s4.sets, ...s6.sets];
  return Object.freeze(sets.length === 0 ? { v4, v6 } : { v4, v6, ipsets: renderIpsets(policy.name, sets) });
}

/**
 * The host-only part of a host wall: the table `renderIptables` writes for a host with these
 * options whose policy admits nothing (empty policy chains). Everything in it is decided by the
 * options alone — loopback, replies, INVALID, DHCP, neighbour discovery and ICMPv6 errors, the
 * forged-source drop, instance metadata, logging and audit mode, the DROP policies — and
 * `twinwall check` compares every host's tables with it outside the policy chains
 * (lib/check/host-only.ts), so whatever this module writes is what the checker expects.
 */
export function renderHostOnlyPart(options: ResolvedHostPolicyOptions, family: Family): string {
  return renderFamily('(host-only part)', options, family, { lines: [], sets: [] });
}

// ---------------------------------------------------------------------------------------------
// The fallback

/**
 * The matches the fallback may use: each is built into iptables and the kernel's core netfilter
 * (addresses, protocol, interface, tcp/udp ports, icmp/icmp6 types, conntrack state), so the
 * fallback loads where a real table fails for a missing module (owner, comment, addrtype, set,
 * hl, limit, LOG …) or a typo. The tests hold every fallback line to this list.
 */
export const FALLBACK_MATCHES: readonly string[] = ['tcp', 'udp', 'icmp', 'icmp6', 'conntrack'];

/** A host's fallbacks: iptables-restore text per family (renderFallback). */
export interface FallbackRuleset {
  readonly v4: string;
  readonly v6: string;
}

/**
 * The host wall's fallback, per family: what a host keeps when its real table fails to load
 * (onLoadFailure 'lockdown'; docs/user-data.md, "When loading fails"). Loaded first at every
 * boot, then replaced by the real table. DROP policies; loopback; replies (conntrack
 * ESTABLISHED,RELATED); the admin roles' ingress (HostPolicy.adminRules), so the host can be
 * fixed; DHCP (as in the real table: to where a server can be); IPv6 neighbour discovery (the
 * kernel itself discards neighbour discovery whose hop limit is not 255, so no hl match is
 * needed). Nothing else: no egress of the roles, no metadata service, no logging, no comments.
 * Always linear (no ipsets: a set is a module of its own).
 */
export function renderFallback(policy: HostPolicy): FallbackRuleset {
  checkRenderable(policy, 'renderFallback');
  // Read once: HostPolicy.adminRules normalises the admin flows on every read.
  const adminRules = policy.adminRules;
  return Object.freeze({ v4: renderFallbackFamily(policy.name, policy.options, adminRules, 4), v6: renderFallbackFamily(policy.name, policy.options, adminRules, 6) });
}

/**
 * The fallback's host-only part: the fallback `renderFallback` writes for a host with these
 * options and no admin roles. Everything in it but the admin ingress is decided by the options
 * alone (DHCP's destinations by `subnets`), so `twinwall check` compares every host's fallback
 * with it, and holds the rest (the admin ingress) to what the real table admits.
 */
export function renderFallbackPart(options: ResolvedHostPolicyOptions, family: Family): string {
  return renderFallbackFamily('(host-only part)', options, [], family);
}

function renderFallbackFamily(host: string, options: ResolvedHostPolicyOptions, adminRules: readonly PolicyRule[], family: Family): string {
  const v6 = family === 6;
  const dhcp = dhcpLines(options, family, false);
  const out: string[] = [
    `# twinwall FALLBACK for host ${host}, ${v6 ? 'IPv6' : 'IPv4'} (iptables-restore, filter table): loaded before the real`,
    '# table at every boot, and what stays if the real table fails to load (onLoadFailure lockdown).',
    '# Core matches only, so it loads where the real table may not. Rendered from the host policy.',
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT DROP [0:0]',
    '# Inbound: loopback, neighbour discovery, replies, DHCP, administration',
    '-A INPUT -i lo -j ACCEPT',
  ];
  if (v6) for (const k of ICMPV6_NEIGHBOUR_DISCOVERY) out.push(`-A INPUT ${icmp6(k)} -j ACCEPT`);
  out.push('-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  out.push(...dhcp.input);
  for (const rule of adminRules) {
    const match = portMatch(rule, family);
    if (match === undefined) continue;
    const cidrs = rule.hostCidrs.filter((c) => c.family === family);
    if (cidrs.length === 0) continue;
    out.push(`# ${commentText(provenanceComment(rule.because))}`);
    for (const c of cidrs) out.push(ruleLine('INPUT', [c.isAny ? '' : `-s ${c.text}`, match].filter((s) => s !== '').join(' '), 'ACCEPT', undefined));
  }
  out.push('# Outbound: loopback, neighbour discovery, replies, DHCP; nothing of the roles');
  out.push('-A OUTPUT -o lo -j ACCEPT');
  if (v6) for (const k of ICMPV6_NEIGHBOUR_DISCOVERY_SENT) out.push(`-A OUTPUT ${icmp6(k)} -j ACCEPT`);
  out.push('-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  if (!v6) out.push(dhcpDiscover(false));
  out.push(...dhcp.output);
  out.push('COMMIT');
  return `${out.join('\n')}\n`;
}
