/**
 * The host wall as a function: which first packets of new connections the filter table admits,
 * computed symbolically over the flow space (space.ts). Every rule's matches become a region;
 * packets flow through the chains as boxes that rules split, accept, drop, return or jump with.
 *
 * What is modelled (anything else is reported as undecidable, never guessed):
 * - filter table, built-in policies, user chains, -j / -g / RETURN, jump loops;
 * - -p, -s/-d (negated), -i/-o lo, -f, in the canonical form iptables-parse.ts gives them;
 * - tcp/udp --dport/--sport (ranges, negated), --syn, --tcp-flags; multiport --dports/--sports/
 *   --ports lists; icmp --icmp-type and icmp6 --icmpv6-type (type or type/code);
 * - conntrack --ctstate and state --state (a first packet is NEW, or UNTRACKED for ICMPv6
 *   neighbour discovery and MLD);
 * - addrtype --src-type/--dst-type; owner --uid-owner (egress); set --match-set (sets defined in
 *   the user-data; an unknown set is undecidable); iprange; hl/ttl; comment;
 * - non-terminating targets (LOG, NFLOG, MARK …) continue; a rule with an unmodelled match or a
 *   rate limit (-m limit) that decides anything makes the packets reaching it undecidable.
 *
 * Scope: the first packet of a new connection on a non-loopback interface: a TCP SYN, a UDP
 * datagram, an ICMP request that conntrack tracks as NEW (echo, timestamp, information, address
 * mask; ICMPv6 echo and node information), an ICMPv6 neighbour-discovery or MLD message (which
 * conntrack leaves untracked), or another protocol's first packet. ICMP errors and
 * replies are never NEW (conntrack calls them RELATED or INVALID), so they are not flows; nor
 * are IPv6 extension headers, or ICMPv6 carried in IPv4 and ICMP in IPv6.
 */
import { Family, familyBits } from '../address';
import { Direction } from '../flow';
import { ADDRESS_TYPES, addressesOfType, ownUnicast, parseCidrLenient, routableSources } from './addresses';
import { IpsetDefinition } from './ipset';
import { IptChain, IptDocument, IptOption, IptRule, IptTable } from './iptables-parse';
import { Axis, Box, IntervalSet, Region, carve, fullSet } from './space';
import { PROTO } from '../port';



/** ICMP types conntrack tracks as the start of a new connection. */
export const NEW_ICMP_TYPES: Record<Family, readonly number[]> = { 4: [8, 13, 15, 17], 6: [128, 139] };

/**
 * ICMPv6 types conntrack never tracks: neighbour discovery (router and neighbour solicitation and
 * advertisement, redirect) and multicast listener discovery. Such a packet is UNTRACKED — neither
 * NEW nor INVALID — so it goes on past the replies and INVALID rules to whatever else a table
 * has: it is a first packet too, and every rule that admits one is compared.
 */
export const UNTRACKED_ICMP_TYPES: Record<Family, readonly number[]> = { 4: [], 6: [130, 131, 132, 133, 134, 135, 136, 137, 143] };

/** The packets of the flow space conntrack calls UNTRACKED (the rest of it is NEW). */
function untracked(ctx: ModelContext): Region {
  const types = UNTRACKED_ICMP_TYPES[ctx.family];
  return types.length === 0 ? Region.EMPTY : box(ctx, { proto: IntervalSet.of(icmpProto(ctx.family)), point: icmpTypes(types) });
}

/** IPv6 extension headers are never the protocol ip6tables' -p sees. */
const IPV6_NOT_UPPER = [0, 43, 44, 59, 60];

export function icmpProto(family: Family): number {
  return family === 4 ? PROTO.icmp : PROTO.icmpv6;
}

/** The point set of whole ICMP types. */
export function icmpTypes(types: readonly number[]): IntervalSet {
  return IntervalSet.from(types.map((t) => [t * 256, t * 256 + 255] as const));
}

/**
 * Every first packet of a new connection in one direction and family, as boxes. Ingress reaches
 * one of the host's own unicast addresses; egress leaves from one (kind 0) or, forged, from any
 * other address (kind 1).
 */
export function universe(direction: Direction, family: Family): Region {
  // A constant of the direction and family, made once (regions are immutable).
  const key = `${direction} ${family}`;
  let made = UNIVERSES.get(key);
  if (made === undefined) UNIVERSES.set(key, (made = makeUniverse(direction, family)));
  return made;
}

const UNIVERSES = new Map<string, Region>();

function makeUniverse(direction: Direction, family: Family): Region {
  const bits = familyBits(family);
  const icmp = icmpProto(family);
  // The other family's ICMP (protocol 58 in IPv4, 1 in IPv6) is no protocol a host stack
  // handles there (Linux answers protocol-unreachable / parameter-problem), so it opens nothing.
  let others = IntervalSet.of(0, 255).subtract(IntervalSet.points([PROTO.tcp, PROTO.udp, PROTO.icmp, PROTO.icmpv6]));
  if (family === 6) others = others.subtract(IntervalSet.points(IPV6_NOT_UPPER));
  const protocolParts: Partial<Record<Axis, IntervalSet>>[] = [
    { proto: IntervalSet.points([PROTO.tcp, PROTO.udp]) },
    { proto: IntervalSet.of(icmp), point: icmpTypes([...NEW_ICMP_TYPES[family], ...UNTRACKED_ICMP_TYPES[family]]), sport: IntervalSet.of(0) },
    { proto: others, point: IntervalSet.of(0), sport: IntervalSet.of(0) },
  ];
  const sides: Partial<Record<Axis, IntervalSet>>[] =
    direction === 'ingress'
      ? [{ kind: IntervalSet.of(0), local: ownUnicast(family), uid: IntervalSet.of(0) }]
      : [
          { kind: IntervalSet.of(0), local: ownUnicast(family) },
          { kind: IntervalSet.of(1), local: routableSources(family) },
        ];
  const boxes: Box[] = [];
  for (const p of protocolParts) for (const s of sides) boxes.push(Box.where(bits, { ...p, ...s }));
  return Region.of(boxes);
}

/** A rule (or a chain policy) that decided, or was passed on the way. */
export interface Step {
  readonly chain: string;
  /** Rule number in the chain; undefined for the chain's policy. */
  readonly number?: number;
  readonly line?: number;
  readonly comment?: string;
  /** ACCEPT, DROP, REJECT, RETURN, "policy ACCEPT", "jump tw-in", … */
  readonly action: string;
  readonly text?: string;
}

export interface Decided {
  readonly box: Box;
  /** Jumps taken and the deciding step, in order. */
  readonly path: readonly Step[];
}

export interface Undecided {
  readonly box: Box;
  readonly reason: string;
  readonly path: readonly Step[];
}

export interface DirectionModel {
  readonly direction: Direction;
  readonly family: Family;
  readonly universe: Region;
  /** What the host wall admits, pairwise disjoint, each with the path that admitted it. */
  readonly admitted: readonly Decided[];
  /** What it drops (disjoint from admitted). */
  readonly dropped: readonly Decided[];
  /** What the checker cannot decide, with why. */
  readonly undecidable: readonly Undecided[];
}

export interface ModelContext {
  readonly family: Family;
  readonly direction: Direction;
  readonly ipsets: ReadonlyMap<string, IpsetDefinition>;
}

/** A rule's matches as a region, plus anything the model cannot decide about them. */
export interface RuleMatch {
  readonly region: Region;
  readonly unknown: readonly string[];
}

const CONTINUING_TARGETS = new Set(['LOG', 'NFLOG', 'ULOG', 'TRACE', 'AUDIT', 'MARK', 'CONNMARK', 'CLASSIFY', 'TCPMSS', 'DSCP', 'TOS', 'SECMARK', 'CONNSECMARK', 'IDLETIMER', 'LED', 'CHECKSUM']);
const KNOWN_MODULES = new Set(['tcp', 'udp', 'icmp', 'icmp6', 'icmpv6', 'multiport', 'conntrack', 'state', 'addrtype', 'owner', 'set', 'comment', 'iprange', 'hl', 'ttl', 'limit']);

class Unknown extends Error {}

function portsSet(text: string): IntervalSet {
  const parts = text.split(',');
  const out: [number, number][] = [];
  for (const p of parts) {
    const m = /^(\d*)(?::(\d*))?$/.exec(p);
    if (!m || (m[1] === '' && m[2] === undefined)) throw new Unknown(`unreadable port ${JSON.stringify(p)}`);
    const a = m[1] === '' ? 0 : Number(m[1]);
    const b = m[2] === undefined ? a : m[2] === '' ? 65535 : Number(m[2]);
    if (a > 65535 || b > 65535) throw new Unknown(`port ${p} out of range`);
    out.push(a <= b ? [a, b] : [b, a]);
  }
  return IntervalSet.from(out);
}

/** An ICMP type as the parser gives it: "any", "8" (every code) or "3/4". */
function icmpPoint(text: string): IntervalSet {
  if (text === 'any') return fullSet('point', 0);
  const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) throw new Unknown(`ICMP type ${JSON.stringify(text)} is not one twinwall knows`);
  const type = Number(m[1]);
  return m[2] === undefined ? IntervalSet.of(type * 256, type * 256 + 255) : IntervalSet.of(type * 256 + Number(m[2]));
}

/** A protocol as the parser gives it: its number ("0" for all). */
function protocolSet(text: string): IntervalSet {
  if (!/^\d+$/.test(text)) throw new Unknown(`protocol ${JSON.stringify(text)} is not a number`);
  return text === '0' ? fullSet('proto', 0) : IntervalSet.of(Number(text));
}

/** A uid or uid range as the parser gives it: "0" or "0-10". */
function ownerUid(text: string): IntervalSet {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new Unknown(`--uid-owner ${text} is not a uid`);
  return IntervalSet.of(BigInt(m[1]), BigInt(m[2] ?? m[1]));
}

function box(ctx: ModelContext, constraints: Partial<Record<Axis, IntervalSet>>): Region {
  return Region.of([Box.where(familyBits(ctx.family), constraints)]);
}

/** The whole flow space of the context's family, made once per family (regions are immutable). */
function full(ctx: ModelContext): Region {
  return FULL_REGIONS[ctx.family];
}

const FULL_REGIONS: Record<Family, Region> = { 4: Region.of([Box.full(familyBits(4))]), 6: Region.of([Box.full(familyBits(6))]) };

/** Which axis an address option talks about: source/destination → remote/local. */
function addressAxis(ctx: ModelContext, which: 'src' | 'dst'): 'remote' | 'local' {
  const remoteIsSource = ctx.direction === 'ingress';
  return (which === 'src') === remoteIsSource ? 'remote' : 'local';
}

function addressList(ctx: ModelContext, text: string): IntervalSet {
  let set = IntervalSet.EMPTY;
  for (const part of text.split(',')) {
    let c;
    try {
      c = parseCidrLenient(part);
    } catch {
      throw new Unknown(`address ${JSON.stringify(part)} is not a literal address (host names are resolved when the rules load)`);
    }
    if (c.family !== ctx.family) throw new Unknown(`address ${part} is not IPv${ctx.family}`);
    set = set.union(c.set);
  }
  return set;
}

/** An `-m addrtype` side: the packets whose source/destination has one of `types`. */
function addrtypeRegion(ctx: ModelContext, which: 'src' | 'dst', types: readonly string[]): Region {
  const axis = addressAxis(ctx, which);
  for (const t of types) if (!ADDRESS_TYPES.includes(t)) throw new Unknown(`address type ${t} is not one the kernel knows`);
  const addrs = types.reduce((s, t) => s.union(addressesOfType(ctx.family, t)), IntervalSet.EMPTY);
  if (axis === 'remote') return box(ctx, { remote: addrs });
  // The host's side: its own addresses are LOCAL; a forged source has the type of its address.
  const boxes = [Box.where(familyBits(ctx.family), { kind: IntervalSet.of(1), local: addrs })];
  if (types.includes('LOCAL')) boxes.push(Box.where(familyBits(ctx.family), { kind: IntervalSet.of(0) }));
  return Region.of(boxes);
}

function setRegion(ctx: ModelContext, name: string, flagsText: string): Region {
  const set = ctx.ipsets.get(name);
  if (set === undefined) throw new Unknown(`ipset ${name} is not defined in the user-data, so its members are unknown`);
  if (set.unsupported !== undefined) throw new Unknown(`ipset ${name}: ${set.unsupported}`);
  if (set.family !== ctx.family) throw new Unknown(`ipset ${name} is IPv${set.family}, used in the IPv${ctx.family} table`);
  const flags = flagsText.split(',');
  if (flags.some((f) => f !== 'src' && f !== 'dst')) throw new Unknown(`--match-set flags ${flagsText}`);
  const addrAxis = addressAxis(ctx, flags[0] as 'src' | 'dst');
  const twoDim = set.type.endsWith(',port');
  if (twoDim && flags.length < 2) throw new Unknown(`ipset ${name} (${set.type}) matched with one flag`);
  // The packet's destination port is the point axis in both directions; its source port, sport.
  const portAxis: Axis = flags[1] === 'dst' ? 'point' : 'sport';
  const positive: Box[] = [];
  const negative: Box[] = [];
  for (const m of set.members) {
    const c: Partial<Record<Axis, IntervalSet>> = { [addrAxis]: m.addresses };
    if (twoDim && m.proto !== undefined && m.ports !== undefined) {
      c.proto = IntervalSet.of(m.proto);
      c[portAxis] = m.ports;
    }
    (m.nomatch ? negative : positive).push(Box.where(familyBits(ctx.family), c));
  }
  return Region.of(positive).subtract(Region.of(negative));
}

function hlRegion(ctx: ModelContext, name: string, value: string): Region {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 255) throw new Unknown(`${name} ${value}`);
  const op = name.replace(/^--(hl|ttl)-/, '');
  const set = op === 'eq' ? IntervalSet.of(n) : op === 'lt' ? IntervalSet.of(0, n - 1) : op === 'gt' ? IntervalSet.of(n + 1, 255) : undefined;
  if (set === undefined) throw new Unknown(`${name} is not modelled`);
  return box(ctx, { hl: set });
}

/** One option's region (before negation). Throws Unknown for what the model cannot decide. */
function optionRegion(ctx: ModelContext, chain: string, o: IptOption): Region {
  const a = o.args;
  switch (o.name) {
    case '-p':
      return box(ctx, { proto: protocolSet(a[0]) });
    case '-s':
      return box(ctx, { [addressAxis(ctx, 'src')]: addressList(ctx, a[0]) });
    case '-d':
      return box(ctx, { [addressAxis(ctx, 'dst')]: addressList(ctx, a[0]) });
    case '-i':
    case '-o': {
      // Only the non-loopback interface is modelled; twinwall never names another one.
      if (a[0] === 'lo') return Region.EMPTY;
      throw new Unknown(`${o.name} ${a[0]}: the verdict depends on the interface name`);
    }
    case '-f':
      return Region.EMPTY; // the first packet of a connection is never a later fragment
    case '-4':
    case '-6':
      return full(ctx);
    case '--dport':
    case '--destination-port':
    case '--dports':
    case '--destination-ports':
      return box(ctx, { point: portsSet(a[0]) });
    case '--sport':
    case '--source-port':
    case '--sports':
    case '--source-ports':
      return box(ctx, { sport: portsSet(a[0]) });
    case '--ports': {
      const p = portsSet(a[0]);
      return Region.of([Box.where(familyBits(ctx.family), { point: p }), Box.where(familyBits(ctx.family), { sport: p })]);
    }
    case '--syn':
      return full(ctx); // the first packet of a TCP connection is a SYN
    case '--tcp-flags': {
      if (a.length < 2) throw new Unknown('--tcp-flags needs a mask and a comparison');
      const flags = (s: string) => new Set(s === 'ALL' ? ['SYN', 'ACK', 'FIN', 'RST', 'URG', 'PSH', 'ECE', 'CWR'] : s === 'NONE' ? [] : s.split(','));
      const mask = flags(a[0]);
      const comp = flags(a[1]);
      // The packet carries SYN alone: every flag in the mask must be set exactly when comp names it.
      return [...mask].every((f) => (f === 'SYN') === comp.has(f)) ? full(ctx) : Region.EMPTY;
    }
    case '--icmp-type':
      return box(ctx, { point: icmpPoint(a[0]) });
    case '--icmpv6-type':
      return box(ctx, { point: icmpPoint(a[0]) });
    case '--ctstate':
    case '--state': {
      // A first packet is NEW, or UNTRACKED (neighbour discovery, MLD); never a reply.
      const states = a[0].split(',');
      let r = states.includes('NEW') ? full(ctx).subtract(untracked(ctx)) : Region.EMPTY;
      if (states.includes('UNTRACKED')) r = r.union(untracked(ctx));
      return r;
    }
    case '--src-type':
      return addrtypeRegion(ctx, 'src', a[0].split(','));
    case '--dst-type':
      return addrtypeRegion(ctx, 'dst', a[0].split(','));
    case '--uid-owner':
      if (ctx.direction !== 'egress' || chain === 'INPUT') throw new Unknown('--uid-owner outside OUTPUT');
      return box(ctx, { uid: ownerUid(a[0]) });
    case '--socket-exists':
      if (ctx.direction !== 'egress') throw new Unknown('--socket-exists on ingress');
      return full(ctx);
    case '--match-set':
      if (a.length < 2) throw new Unknown('--match-set needs a set name and flags');
      return setRegion(ctx, a[0], a[1]);
    case '--src-range':
    case '--dst-range': {
      const [x, y] = a[0].split('-');
      const lo = addressList(ctx, x);
      const hi = addressList(ctx, y ?? x);
      return box(ctx, { [addressAxis(ctx, o.name === '--src-range' ? 'src' : 'dst')]: IntervalSet.of(lo.first, hi.last) });
    }
    case '--hl-eq':
    case '--hl-lt':
    case '--hl-gt':
    case '--ttl-eq':
    case '--ttl-lt':
    case '--ttl-gt':
      return hlRegion(ctx, o.name, a[0]);
    case '--comment':
      return full(ctx);
    case '--limit':
    case '--limit-burst':
      throw new Unknown('-m limit: the verdict depends on the packet rate');
    default:
      throw new Unknown(`${o.module !== undefined ? `-m ${o.module} ` : ''}${o.name} is not modelled`);
  }
}

/**
 * Regions of rules already matched, by the rule's options (the iptables reader shares one parsed
 * command, and so one options list, between every host that has the same line in the same
 * context), then by family, direction, chain and modules. A rule that matches an ipset is matched anew:
 * its region depends on the host's own set definitions.
 */
const MATCHED = new WeakMap<readonly IptOption[], Map<string, RuleMatch>>();

/** The region a rule matches, and what about it is undecidable (see MATCHED). */
export function ruleMatch(ctx: ModelContext, rule: IptRule): RuleMatch {
  if (rule.modules.includes('set')) return matchRule(ctx, rule);
  let byContext = MATCHED.get(rule.options);
  if (byContext === undefined) MATCHED.set(rule.options, (byContext = new Map()));
  const key = `${ctx.family} ${ctx.direction} ${rule.chain} ${rule.modules.join(',')}`;
  let match = byContext.get(key);
  if (match === undefined) byContext.set(key, (match = matchRule(ctx, rule)));
  return match;
}

function matchRule(ctx: ModelContext, rule: IptRule): RuleMatch {
  let region = full(ctx);
  const unknown: string[] = [];
  for (const m of rule.modules) if (!KNOWN_MODULES.has(m)) unknown.push(`-m ${m} is not modelled`);
  for (const o of rule.options) {
    if (o.module !== undefined && !KNOWN_MODULES.has(o.module)) continue; // reported above
    try {
      const r = optionRegion(ctx, rule.chain, o);
      region = region.intersect(o.negated ? full(ctx).subtract(r) : r);
    } catch (e) {
      if (e instanceof Unknown) unknown.push(e.message);
      else throw e;
    }
    if (region.isEmpty) break;
  }
  return { region, unknown: [...new Set(unknown)] };
}

interface Flowing {
  readonly box: Box;
  readonly path: readonly Step[];
  /** Set once the packet took a branch the model could not decide. */
  readonly uncertain?: string;
}

interface ChainOutcome {
  accepted: Flowing[];
  dropped: Flowing[];
  undecided: (Flowing & { reason: string })[];
  returned: Flowing[];
}

const MAX_FLOWING = 20000;
const MAX_DEPTH = 64;

function step(chain: IptChain, rule: IptRule, action: string): Step {
  return {
    chain: chain.name,
    number: rule.number,
    line: rule.line,
    ...(rule.comment !== undefined ? { comment: rule.comment } : {}),
    action,
    text: rule.text,
  };
}

function walk(table: IptTable, ctx: ModelContext, chain: IptChain, input: Flowing[], stack: readonly string[]): ChainOutcome {
  const out: ChainOutcome = { accepted: [], dropped: [], undecided: [], returned: [] };
  let live = input;
  for (const rule of chain.rules) {
    if (live.length === 0) break;
    const target = rule.target;
    if (target === undefined || CONTINUING_TARGETS.has(target.name)) continue; // cannot change the verdict
    if (live.length > MAX_FLOWING) {
      for (const f of live) out.undecided.push({ ...f, reason: 'the rule set is too branchy for the checker (over 20,000 pieces)' });
      return out;
    }
    const match = ruleMatch(ctx, rule);
    const next: Flowing[] = [];
    const hit: Flowing[] = [];
    for (const f of live) {
      const inside = match.region.intersectBox(f.box);
      if (inside.isEmpty) {
        next.push(f);
        continue;
      }
      for (const b of Region.of([f.box]).subtract(inside).boxes) next.push({ ...f, box: b });
      for (const b of inside.boxes) {
        if (match.unknown.length > 0) {
          const uncertain = f.uncertain ?? `${chain.name} rule ${rule.number}: ${match.unknown.join('; ')}`;
          hit.push({ ...f, box: b, uncertain });
          next.push({ ...f, box: b, uncertain }); // the other branch: the rule did not match
        } else hit.push({ ...f, box: b });
      }
    }
    live = next;
    if (hit.length === 0) continue;
    const name = target.name;
    // One step per rule and action, shared by every piece that takes it.
    const taken = (action: string): ((f: Flowing) => Flowing) => {
      const s = step(chain, rule, action);
      return (f) => ({ ...f, path: [...f.path, s] });
    };
    if (name === 'ACCEPT') out.accepted.push(...hit.map(taken('ACCEPT')));
    else if (name === 'DROP' || name === 'REJECT') out.dropped.push(...hit.map(taken(name)));
    else if (name === 'RETURN') out.returned.push(...hit.map(taken('RETURN')));
    else if (table.chains.has(name) && !table.chains.get(name)?.builtin) {
      const sub = table.chains.get(name) as IptChain;
      const how = target.how === 'goto' ? 'goto' : 'jump';
      if (stack.includes(name) || stack.length > MAX_DEPTH) {
        const t = taken(`${how} ${name}`);
        out.undecided.push(...hit.map((f) => ({ ...t(f), reason: `chain ${name} is entered again from itself (a loop iptables-restore rejects)` })));
        continue;
      }
      const r = walk(table, ctx, sub, hit.map(taken(`${how} ${name}`)), [...stack, name]);
      out.accepted.push(...r.accepted);
      out.dropped.push(...r.dropped);
      out.undecided.push(...r.undecided);
      // After a jump, returned packets continue below; after a goto, they return from this chain.
      if (how === 'jump') live = live.concat(r.returned);
      else out.returned.push(...r.returned);
    } else {
      const t = taken(name);
      out.undecided.push(...hit.map((f) => ({ ...t(f), reason: `target ${name} is not modelled` })));
    }
  }
  out.returned.push(...live);
  return out;
}

function regionOf(list: readonly { box: Box }[]): Region {
  return Region.of(list.map((f) => f.box));
}

/** Drop from `list` the parts inside `region`, keeping each piece's path. */
function minus<T extends { box: Box }>(list: readonly T[], region: Region): T[] {
  if (region.isEmpty) return [...list];
  return list.flatMap((f) => Region.of([f.box]).subtract(region).boxes.map((b) => ({ ...f, box: b })));
}

/** Keep the first of overlapping pieces (forked branches may cover the same packets). */
function disjoint<T extends { box: Box }>(list: readonly T[]): T[] {
  const out: T[] = [];
  carve(
    list.map((f) => f.box),
    (box, from) => out.push({ ...list[from], box }),
  );
  return out;
}

/**
 * Evaluate one direction of a filter table. `table` undefined means no filter table was loaded:
 * the kernel then accepts everything.
 */
export function modelDirection(table: IptTable | undefined, ctx: ModelContext, within?: Region): DirectionModel {
  const uni = within === undefined ? universe(ctx.direction, ctx.family) : universe(ctx.direction, ctx.family).intersect(within);
  const input: Flowing[] = uni.boxes.map((box) => ({ box, path: [] }));
  const builtin = ctx.direction === 'ingress' ? 'INPUT' : 'OUTPUT';
  if (table === undefined) {
    const path: Step[] = [{ chain: builtin, action: 'no filter table loaded: the kernel accepts everything' }];
    return { direction: ctx.direction, family: ctx.family, universe: uni, admitted: input.map((f) => ({ box: f.box, path })), dropped: [], undecidable: [] };
  }
  const chain = table.chains.get(builtin) as IptChain;
  const r = walk(table, ctx, chain, input, [builtin]);
  const policy = chain.policy ?? 'ACCEPT';
  const atPolicy = r.returned.map((f) => ({ ...f, path: [...f.path, { chain: builtin, action: `policy ${policy}` }] }));
  const accepted = [...r.accepted, ...(policy === 'ACCEPT' ? atPolicy : [])];
  const dropped = [...r.dropped, ...(policy === 'ACCEPT' ? [] : atPolicy)];
  const certainA = accepted.filter((f) => f.uncertain === undefined);
  const certainD = dropped.filter((f) => f.uncertain === undefined);
  const maybeA = accepted.filter((f) => f.uncertain !== undefined);
  const maybeD = dropped.filter((f) => f.uncertain !== undefined);
  const und = regionOf(r.undecided);
  const both = regionOf(maybeA).intersect(regionOf(maybeD));
  const undecidable: Undecided[] = [
    ...disjoint(r.undecided).map((f) => ({ box: f.box, reason: f.uncertain !== undefined ? `${f.uncertain}; ${f.reason}` : f.reason, path: f.path })),
    ...disjoint(minus(maybeA, und)).flatMap((f) =>
      both.intersectBox(f.box).boxes.map((b) => ({ box: b, reason: f.uncertain as string, path: f.path })),
    ),
  ];
  const notDecided = und.union(both);
  return {
    direction: ctx.direction,
    family: ctx.family,
    universe: uni,
    admitted: disjoint([...minus(certainA, notDecided), ...minus(maybeA, notDecided)]),
    dropped: disjoint([...minus(certainD, notDecided), ...minus(maybeD, notDecided)]),
    undecidable: disjoint(undecidable),
  };
}

/** Tables other than filter that hold rules or non-ACCEPT policies (not modelled). */
export function unmodelledTables(doc: IptDocument): string[] {
  const out: string[] = [];
  for (const t of doc.tables.values()) {
    if (t.name === 'filter') continue;
    const busy = [...t.chains.values()].some((c) => c.rules.length > 0 || (c.builtin && c.policy !== 'ACCEPT'));
    if (busy) out.push(t.name);
  }
  return out;
}
