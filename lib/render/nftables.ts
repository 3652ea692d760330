/**
 * The host wall as one nftables file (`nft -f`): a table of its own, `table inet twinwall`, that
 * holds both address families, its address sets and its chains, and is replaced in one
 * transaction. Pure: no I/O, no cdktf; the same policy always gives the same bytes.
 *
 * It has the semantics of the iptables wall (lib/render/iptables.ts), rule for rule and in the
 * same order; where iptables has a table per family, a rule that belongs to one family here says
 * so (`ip …`, `ip6 …`, `icmpv6 …` or `meta nfproto …`). The vocabulary is the iptables renderer's:
 * chain names, LOG prefixes and limits, RFC 4890 types, DHCP ports, comment sanitising, and the
 * policy layout (which addresses become a set, above the same threshold).
 *
 *   input   loopback → [IPv6: neighbour discovery, MLD, ICMPv6 errors (RFC 4890)] → replies →
 *           INVALID → DHCP client → tw-in (the policy) → log, drop
 *   output  loopback → what only routers send (IPv6 RA and redirect, ICMP redirect): log, drop →
 *           [unspecified-source exceptions: DHCPDISCOVER / IPv6 DAD, RS, MLD] →
 *           forged source (loopback range, or `fib saddr type != local`) → [IPv6: ND, MLD] →
 *           replies → INVALID → DHCP client (to where a DHCP server can be) →
 *           instance metadata (`meta skuid 0`) → tw-out (the policy) → log, drop
 *   forward log, drop (a host is not a router)
 *
 * Coexistence: the file never flushes the ruleset or another table. It starts with
 * `add table inet twinwall` (a no-op when the table exists) and `delete table inet twinwall`,
 * then defines the table: all three are one transaction, so a reload replaces exactly this table,
 * atomically, and a first load works the same. Other tables (Docker's `ip nat`/`ip filter`, an
 * agent's own) stay; a drop in any base chain is final, so the wall holds whatever they accept.
 * Base chains have policy drop in the file itself: no open window while the table loads.
 *
 * Forged sources: `fib saddr type != local` asks the routing tables whether the source is one of
 * the host's addresses on any interface, as iptables' `-m addrtype ! --src-type LOCAL` does (IPv4:
 * the same kernel function; IPv6: the source's local route, which every assigned address has).
 */
import { AddressSet, Cidr, FAMILIES, Family } from '../address';
import { AWS_LINK_LOCAL } from '../peer';
import { HostPolicy, PolicyRule, ResolvedHostPolicyOptions } from '../policy';
import { Memo } from '../memo';
import {
  AUDIT_LOGGED_MARK,
  DHCP_PORTS,
  ICMPV6_ERRORS,
  ICMPV6_LISTENER_DISCOVERY,
  ICMPV6_NEIGHBOUR_DISCOVERY,
  ICMPV6_NEIGHBOUR_DISCOVERY_SENT,
  INSTANCE_METADATA_PORT,
  IPTABLES_CHAINS,
  IPV6_LINK_LOCAL,
  IPV6_LINK_SCOPE_MULTICAST,
  IpsetSpec,
  IptablesRenderOptions,
  LOG_LIMIT,
  LOOPBACK_SOURCES,
  MLD_HOP_LIMIT,
  ND_HOP_LIMIT,
  PolicyEntry,
  ROUTER_ONLY,
  UNSPECIFIED_SOURCE,
  VerdictChain,
  checkRenderable,
  commentText,
  destinationPorts,
  dhcpDestinations,
  layoutPolicy,
  logPrefix,
  setThreshold,
  verdictChains,
} from './iptables';
import { ownRuleComment, provenanceComment } from '../provenance';

/** The rendered host wall: one `nft -f` file. */
export interface NftablesRuleset {
  /** The file (/etc/nftables.d/twinwall.nft or any path): `nft -f` loads it in one transaction. */
  readonly text: string;
}

/** The address-set threshold is the ipset form's: both backends switch to sets at the same size. */
export type NftablesRenderOptions = Pick<IptablesRenderOptions, 'ipsetThreshold'>;

/** The one table twinwall owns; it never touches another. */
export const NFT_TABLE = { family: 'inet', name: 'twinwall' } as const;

/** The base chains, one per netfilter hook, each with policy drop. */
export const NFT_BASE_CHAINS = { input: 'input', forward: 'forward', output: 'output' } as const;

/**
 * Where the user-data puts an nftables host wall (the checker reads it there): the table, and the
 * fallback loaded before it. Not /etc/nftables.conf: the distributions' nftables.service loads
 * that file, which by convention starts with `flush ruleset` — twinwall never owns the ruleset.
 */
export const NFT_RULES_PATH = '/etc/twinwall/twinwall.nft';
export const NFT_FALLBACK_PATH = '/etc/twinwall/fallback.nft';

/** Here-document delimiters of bootcmd's first-boot copies (a numeric suffix when a line equals one). */
export const NFT_HEREDOC = { rules: 'TWINWALL_NFT_RULES', fallback: 'TWINWALL_NFT_FALLBACK' } as const;

/** nftables keeps at most 128 bytes of a rule's comment. */
export const NFT_COMMENT_MAX = 128;

const UNITS: Record<string, string> = { s: 'second', sec: 'second', second: 'second', m: 'minute', min: 'minute', minute: 'minute', h: 'hour', hour: 'hour', d: 'day', day: 'day' };

/** An iptables rate ("10/min") as nftables writes it ("10/minute"). */
export function nftRate(rate: string): string {
  const m = /^(\d+)\/([a-z]+)$/.exec(rate);
  const unit = m === null ? undefined : UNITS[m[2]];
  if (m === null || unit === undefined) throw new RangeError(`rate ${JSON.stringify(rate)} is not N/second, N/minute, N/hour or N/day`);
  return `${m[1]}/${unit}`;
}

function comment(text: string): string {
  return `comment "${commentText(text, NFT_COMMENT_MAX)}"`;
}

/** `ip` or `ip6`: the family's address expression. */
function ipOf(family: Family): 'ip' | 'ip6' {
  return family === 4 ? 'ip' : 'ip6';
}

function nfproto(family: Family): string {
  return `meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`;
}

/** An address as nft writes it: a host without its /32 or /128. */
function address(c: Cidr | string): string {
  return (typeof c === 'string' ? c : c.text).replace(/\/(32|128)$/, '');
}

/** The protocol and port part of a policy rule, as in the iptables wall (tcp/udp: NEW only). */
function portMatch(rule: PolicyRule): string {
  const port = rule.port;
  switch (port.protocol) {
    case 'tcp':
    case 'udp': {
      const ports = destinationPorts(port, '-');
      return `${ports === undefined ? `meta l4proto ${port.protocol}` : `${port.protocol} dport ${ports}`} ct state new`;
    }
    case 'icmp':
    case 'icmpv6': {
      const name = port.protocol === 'icmp' ? 'icmp' : 'icmpv6';
      if (port.icmpType === undefined) return `meta l4proto ${port.protocol === 'icmp' ? 'icmp' : 'ipv6-icmp'}`;
      return port.icmpCode === undefined ? `${name} type ${port.icmpType}` : `${name} type ${port.icmpType} ${name} code ${port.icmpCode}`;
    }
    case 'all':
      return '';
  }
}

/** One `accept` of the policy chains (tw-in, tw-out). */
function policyLine(entry: PolicyEntry, family: Family): string {
  const rule = entry.rule;
  const side = rule.direction === 'ingress' ? 'saddr' : 'daddr';
  let where: string;
  let why: string;
  if (entry.kind === 'set') {
    where = `${ipOf(family)} ${side} @${entry.set.name}`;
    why = `${provenanceComment(entry.because)} (set ${entry.set.name}, ${setElements(entry.set).length} CIDRs)`;
  } else {
    // Without an address the family must be said: an inet chain sees both.
    where = entry.cidr.isAny ? nfproto(family) : `${ipOf(family)} ${side} ${address(entry.cidr)}`;
    why = provenanceComment(rule.because);
  }
  return [where, portMatch(rule), 'accept', comment(why)].filter((s) => s !== '').join(' ');
}

/**
 * A set's elements: the minimal CIDR cover of its addresses, in address order. An interval set
 * refuses overlapping elements, and an ipset's CIDRs may overlap (a security group's host CIDRs
 * inside a declared block); the cover admits exactly the same addresses.
 */
function setElements(set: IpsetSpec): Cidr[] {
  return AddressSet.of(set.family, set.cidrs).toCidrs();
}

function setBlock(set: IpsetSpec): string[] {
  return [
    `\tset ${set.name} {`,
    `\t\ttype ${set.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}`,
    '\t\tflags interval',
    '\t\telements = {',
    ...setElements(set).map((c) => `\t\t\t${address(c)},`),
    '\t\t}',
    '\t}',
  ];
}

/**
 * A chain that logs (rate-limited) and then drops, or in audit mode logs each connection once
 * and accepts, as the iptables wall does: the first rule logs a connection whose conntrack mark
 * lacks AUDIT_LOGGED_MARK, a later one sets it; packets conntrack does not track (no mark) are
 * logged by the enforcing limit. No statement here can refuse a packet.
 */
function verdictChainBlock(v: VerdictChain, audit: boolean): string[] {
  const prefix = logPrefix(v.direction, audit ? 'audit' : 'drop', v.reason);
  const log = `log prefix "${prefix}"${v.uid ? ' flags skuid' : ''}`;
  const limit = `limit rate ${nftRate(LOG_LIMIT.rate)} burst ${LOG_LIMIT.burst} packets`;
  const body = audit
    ? [`ct mark & ${AUDIT_LOGGED_MARK} == 0x0 ${log}`, `ct state invalid,untracked ${limit} ${log}`, `ct mark set ct mark | ${AUDIT_LOGGED_MARK}`, 'accept']
    : [`${limit} ${log}`, 'drop'];
  return [`\tchain ${v.chain} {`, ...body.map((l) => `\t\t${l}`), '\t}'];
}

function icmpv6(kind: { readonly type: number; readonly code?: number }, hopLimit?: number): string {
  const type = `icmpv6 type ${kind.type}${kind.code === undefined ? '' : ` icmpv6 code ${kind.code}`}`;
  return hopLimit === undefined ? type : `${type} ip6 hoplimit ${hopLimit}`;
}

function baseChain(name: string, hook: string, rules: readonly string[]): string[] {
  return [`\tchain ${name} {`, `\t\ttype filter hook ${hook} priority filter; policy drop;`, ...rules.map((l) => `\t\t${l}`), '\t}'];
}

function inputRules(verdict: { invalid: string; drop: string }): string[] {
  const C = IPTABLES_CHAINS;
  const r: string[] = [`iifname "lo" accept ${comment(ownRuleComment('loopback'))}`];
  for (const k of ICMPV6_NEIGHBOUR_DISCOVERY) r.push(`${icmpv6(k, ND_HOP_LIMIT)} accept ${comment(ownRuleComment(`${k.what} from on-link only (RFC 4890)`))}`);
  for (const k of ICMPV6_LISTENER_DISCOVERY) r.push(`ip6 saddr ${IPV6_LINK_LOCAL} ${icmpv6(k, MLD_HOP_LIMIT)} accept ${comment(ownRuleComment(`${k.what}, link-local (RFC 4890)`))}`);
  for (const k of ICMPV6_ERRORS) r.push(`${icmpv6(k)} accept ${comment(ownRuleComment(`${k.what} (RFC 4890)`))}`);
  r.push(`ct state established,related accept ${comment(ownRuleComment('replies, and ICMP errors about our connections (path MTU)'))}`);
  r.push(`ct state invalid jump ${verdict.invalid} ${comment(ownRuleComment('conntrack says INVALID'))}`);
  r.push(`${nfproto(4)} udp sport ${DHCP_PORTS[4].server} udp dport ${DHCP_PORTS[4].client} accept ${comment(ownRuleComment('DHCP server replies, so leases renew'))}`);
  r.push(`ip6 daddr ${IPV6_LINK_LOCAL} udp sport ${DHCP_PORTS[6].server} udp dport ${DHCP_PORTS[6].client} accept ${comment(ownRuleComment('DHCPv6 server replies, so leases renew'))}`);
  r.push(`jump ${C.ingress} ${comment(ownRuleComment('what the roles accept'))}`);
  r.push(`jump ${verdict.drop} ${comment(ownRuleComment('nothing else comes in'))}`);
  return r;
}

function outputRules(options: BaseChainOptions): string[] {
  const C = IPTABLES_CHAINS;
  const u4 = UNSPECIFIED_SOURCE[4];
  const u6 = UNSPECIFIED_SOURCE[6];
  const r: string[] = [`oifname "lo" accept ${comment(ownRuleComment('loopback'))}`];
  for (const k of ROUTER_ONLY[4]) r.push(`icmp type ${k.type} jump ${C.egressDrop} ${comment(ownRuleComment(`${k.what} out: a host is not a router`))}`);
  for (const k of ROUTER_ONLY[6]) r.push(`${icmpv6(k)} jump ${C.egressDrop} ${comment(ownRuleComment(`${k.what} out: a host is not a router`))}`);
  r.push(
    `ip saddr ${address(u4.source)} ip daddr ${address(u4.dhcpDiscover)} udp sport ${DHCP_PORTS[4].client} udp dport ${DHCP_PORTS[4].server} accept ${comment(ownRuleComment('DHCP discover before the host has an address'))}`,
  );
  for (const x of u6.exceptions) r.push(`ip6 saddr ${address(u6.source)} ip6 daddr ${address(x.destination)} ${icmpv6(x, x.hopLimit)} accept ${comment(ownRuleComment(`${x.what}`))}`);
  for (const family of FAMILIES) r.push(`${ipOf(family)} saddr ${LOOPBACK_SOURCES[family].replace(/\/128$/, '')} jump ${C.egressSpoofed} ${comment(ownRuleComment('loopback source on a real interface (forged)'))}`);
  r.push(`fib saddr type != local jump ${C.egressSpoofed} ${comment(ownRuleComment('source address is not this host (forged)'))}`);
  for (const k of ICMPV6_NEIGHBOUR_DISCOVERY_SENT) r.push(`${icmpv6(k, ND_HOP_LIMIT)} accept ${comment(ownRuleComment(`${k.what} (RFC 4890)`))}`);
  for (const k of ICMPV6_LISTENER_DISCOVERY.filter((m) => m.query !== true)) {
    r.push(`ip6 daddr ${IPV6_LINK_SCOPE_MULTICAST} ${icmpv6(k, MLD_HOP_LIMIT)} accept ${comment(ownRuleComment(`${k.what}, link-local (RFC 4890)`))}`);
  }
  r.push(`ct state established,related accept ${comment(ownRuleComment('replies, and ICMP errors about our connections'))}`);
  r.push(`ct state invalid jump ${C.egressInvalid} ${comment(ownRuleComment('conntrack says INVALID'))}`);
  for (const family of FAMILIES) {
    const { client, server } = DHCP_PORTS[family];
    const v = family === 6 ? 'DHCPv6' : 'DHCP';
    for (const d of dhcpDestinations(options, family)) {
      r.push(`${ipOf(family)} daddr ${address(d.cidr)} udp sport ${client} udp dport ${server} accept ${comment(ownRuleComment(`${v} client to ${d.what} only, so leases renew`))}`);
    }
  }
  for (const family of FAMILIES) {
    const imds = `${ipOf(family)} daddr ${AWS_LINK_LOCAL.instanceMetadata[family]}`;
    const http = `tcp dport ${INSTANCE_METADATA_PORT}`;
    switch (options.instanceMetadata) {
      case 'root-only':
        r.push(`${imds} ${http} meta skuid 0 ct state new accept ${comment(ownRuleComment('instance metadata, root only (instanceMetadata root-only)'))}`);
        r.push(`${imds} jump ${C.egressMetadata} ${comment(ownRuleComment('instance metadata, anyone but root'))}`);
        break;
      case 'none':
        r.push(`${imds} jump ${C.egressMetadata} ${comment(ownRuleComment('instance metadata, nobody (instanceMetadata none)'))}`);
        break;
      case 'all-users':
        r.push(`${imds} ${http} ct state new accept ${comment(ownRuleComment('instance metadata, every user (instanceMetadata all-users)'))}`);
        break;
    }
  }
  r.push(`jump ${C.egress} ${comment(ownRuleComment('what the roles send'))}`);
  r.push(`jump ${C.egressDrop} ${comment(ownRuleComment('nothing else goes out'))}`);
  return r;
}

/**
 * Render a host policy as one nftables file defining `table inet twinwall`. The policy's rules
 * appear in `policy.rules` order (IPv4 entries, then IPv6); address sets above `ipsetThreshold`
 * CIDRs become named interval sets, exactly where the iptables wall uses ipsets.
 */
export function renderNftables(policy: HostPolicy, options: NftablesRenderOptions = {}): NftablesRuleset {
  checkRenderable(policy, 'renderNftables');
  const threshold = setThreshold(policy, options);
  const { audit } = policy.options;
  const C = IPTABLES_CHAINS;
  const layouts = FAMILIES.map((family) => ({ family, layout: layoutPolicy(policy, family, threshold) }));
  const verdicts = verdictChains(policy);
  const table = `${NFT_TABLE.family} ${NFT_TABLE.name}`;

  const out: string[] = [];
  out.push(`# twinwall host wall for host ${policy.name} (nft -f): IPv4 and IPv6 in table ${table}, loaded in one transaction.`);
  out.push('# Rendered from the host policy: change the roles, not this file.');
  out.push(`# Replaces table ${table} only (add, delete, define: one transaction); every other table stays.`);
  if (audit) {
    out.push('# AUDIT MODE: every packet the enforcing rules would drop is logged ("twinwall ... audit ...")');
    out.push('# and accepted. That includes INVALID packets and packets with a forged source address:');
    out.push('# audit mode promises to change no traffic at all, so switching it on can never break a');
    out.push('# host, and the log shows exactly what enforcement would stop. The base chains\' policies');
    out.push('# stay drop, but every chain ends in log + accept before a policy is reached. Each connection');
    out.push(`# is logged once (its conntrack mark gets bit ${AUDIT_LOGGED_MARK}); no statement here can refuse a packet.`);
  }
  out.push(`add table ${table}`);
  out.push(`delete table ${table}`);
  out.push(`table ${table} {`);
  for (const { layout } of layouts) for (const set of layout.sets) out.push(...setBlock(set));
  out.push(...baseChains(policy.options));
  for (const [chain, direction] of [
    [C.ingress, 'ingress'],
    [C.egress, 'egress'],
  ] as const) {
    const lines = layouts.flatMap(({ family, layout }) => layout.entries.filter((e) => e.rule.direction === direction).map((e) => policyLine(e, family)));
    out.push(`\tchain ${chain} {`, ...lines.map((l) => `\t\t${l}`), '\t}');
  }
  out.push(...verdictBlocks(verdicts, audit));
  out.push('}');
  return Object.freeze({ text: `${out.join('\n')}\n` });
}

/** Lines that depend on a few host options only, shared by the hosts that have the same. */
const OPTION_LINES = new Memo<readonly string[]>();

/** What the base chains depend on: outputRules takes these options and no other, so the key holds all it reads. */
type BaseChainOptions = Pick<ResolvedHostPolicyOptions, 'instanceMetadata' | 'subnets'>;

/** The three base chains (input, forward, output); the same for every host with the same BaseChainOptions. */
function baseChains(options: BaseChainOptions): readonly string[] {
  const C = IPTABLES_CHAINS;
  const used: BaseChainOptions = { instanceMetadata: options.instanceMetadata, subnets: options.subnets };
  return OPTION_LINES.get(`base\u0000${used.instanceMetadata}\u0000${used.subnets.join(' ')}`, () =>
    Object.freeze([
      ...baseChain(NFT_BASE_CHAINS.input, 'input', inputRules({ invalid: C.ingressInvalid, drop: C.ingressDrop })),
      ...baseChain(NFT_BASE_CHAINS.forward, 'forward', [`jump ${C.forwardDrop} ${comment(ownRuleComment('this host forwards nothing'))}`]),
      ...baseChain(NFT_BASE_CHAINS.output, 'output', outputRules(used)),
    ]),
  );
}

/** The log-and-drop (or audit) chains; the same for every host with the same chains and audit. */
function verdictBlocks(verdicts: readonly VerdictChain[], audit: boolean): readonly string[] {
  const key = verdicts.map((v) => `${v.chain} ${v.direction} ${v.reason ?? ''} ${v.uid}`).join('\u0000');
  return OPTION_LINES.get(`verdict\u0000${audit}\u0000${key}`, () => Object.freeze(verdicts.flatMap((v) => verdictChainBlock(v, audit))));
}

/**
 * The fallback (onLoadFailure lockdown) as one nftables file: the same `table inet twinwall`
 * holding the iptables fallback's core matches only (lib/render/iptables.ts renderFallback) —
 * policy drop, loopback, replies, DHCP, neighbour discovery, the admin roles' ingress — so it
 * loads where the real wall may not. The loader loads it first, then the real wall replaces the
 * table in one transaction; if that fails, the fallback stays.
 */
export function renderNftablesFallback(policy: HostPolicy): NftablesRuleset {
  checkRenderable(policy, 'renderNftablesFallback');
  const table = `${NFT_TABLE.family} ${NFT_TABLE.name}`;
  const input: string[] = ['iifname "lo" accept'];
  for (const k of ICMPV6_NEIGHBOUR_DISCOVERY) input.push(`${icmpv6(k)} accept`);
  input.push('ct state established,related accept');
  input.push(`${nfproto(4)} udp sport ${DHCP_PORTS[4].server} udp dport ${DHCP_PORTS[4].client} accept`);
  input.push(`ip6 daddr ${IPV6_LINK_LOCAL} udp sport ${DHCP_PORTS[6].server} udp dport ${DHCP_PORTS[6].client} accept`);
  // Read once: HostPolicy.adminRules normalises the admin flows on every read.
  const adminRules = policy.adminRules;
  for (const family of FAMILIES) {
    for (const rule of adminRules) {
      const p = rule.port.protocol;
      if ((p === 'icmp' && family === 6) || (p === 'icmpv6' && family === 4)) continue; // the other family's
      for (const c of rule.hostCidrs.filter((h) => h.family === family)) {
        input.push([c.isAny ? nfproto(family) : `${ipOf(family)} saddr ${address(c)}`, portMatch(rule), 'accept'].filter((s) => s !== '').join(' '));
      }
    }
  }
  const output: string[] = ['oifname "lo" accept'];
  for (const k of ICMPV6_NEIGHBOUR_DISCOVERY_SENT) output.push(`${icmpv6(k)} accept`);
  output.push('ct state established,related accept');
  const u4 = UNSPECIFIED_SOURCE[4];
  output.push(`ip saddr ${address(u4.source)} ip daddr ${address(u4.dhcpDiscover)} udp sport ${DHCP_PORTS[4].client} udp dport ${DHCP_PORTS[4].server} accept`);
  for (const family of FAMILIES) {
    const { client, server } = DHCP_PORTS[family];
    for (const d of dhcpDestinations(policy.options, family)) output.push(`${ipOf(family)} daddr ${address(d.cidr)} udp sport ${client} udp dport ${server} accept`);
  }
  const out = [
    `# twinwall FALLBACK for host ${policy.name} (nft -f): table ${table} with core matches only, loaded before the`,
    '# real wall at every boot, and what stays if the real wall fails to load (onLoadFailure lockdown).',
    `add table ${table}`,
    `delete table ${table}`,
    `table ${table} {`,
    ...baseChain(NFT_BASE_CHAINS.input, 'input', input),
    ...baseChain(NFT_BASE_CHAINS.forward, 'forward', []),
    ...baseChain(NFT_BASE_CHAINS.output, 'output', output),
    '}',
  ];
  return Object.freeze({ text: `${out.join('\n')}\n` });
}

/**
 * Loaded when the fallback itself fails (a kernel without conntrack, say): policy drop and
 * loopback, no other match; the host is closed and unreachable, and says so.
 */
export const NFT_DROP_ONLY_TABLE = [
  `add table ${NFT_TABLE.family} ${NFT_TABLE.name}`,
  `delete table ${NFT_TABLE.family} ${NFT_TABLE.name}`,
  `table ${NFT_TABLE.family} ${NFT_TABLE.name} {`,
  ...baseChain(NFT_BASE_CHAINS.input, 'input', ['iifname "lo" accept']),
  ...baseChain(NFT_BASE_CHAINS.forward, 'forward', []),
  ...baseChain(NFT_BASE_CHAINS.output, 'output', ['oifname "lo" accept']),
  '}',
  '',
].join('\n');
