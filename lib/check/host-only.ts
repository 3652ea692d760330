/**
 * The host-only part of a host wall, checked against the policy record. Security groups never
 * see DHCP, neighbour discovery, ICMP errors, the link-local services and the metadata mode, the
 * forged-source drop, logging and audit mode, the INVALID drop, loopback or the DROP policies, so
 * only the checker can catch a change there. It takes the options recorded in the artefacts
 * (record.ts), has the renderer write the host-only part for them (renderHostOnlyPart: the very
 * code that writes every host wall, so a change of the renderer changes the expectation with
 * it), and compares the host's table with it: every chain but the policy chains, rule by rule by
 * meaning (iptables-parse.ts keys, comments aside), the built-in policies, the chains declared.
 * Any difference, narrower or wider, is a finding. Pure.
 */
import { Family, familyBits } from '../address';
import { Direction } from '../flow';
import { ResolvedHostPolicyOptions } from '../policy';
import { ownRuleWhat } from '../provenance';
import { IPTABLES_CHAINS, renderFallbackPart, renderHostOnlyPart } from '../render/iptables';
import { linkLocalServices } from './addresses';
import { describeFlow } from './describe';
import { DirectionModel, Step, modelDirection, unmodelledTables } from './host-model';
import { IptChain, IptDocument, IptRule, parseIptablesRestore } from './iptables-parse';
import { Box, IntervalSet, Region } from './space';

/** The chains whose rules are the policy's own (compared with the security groups instead). */
export const POLICY_CHAINS: readonly string[] = [IPTABLES_CHAINS.ingress, IPTABLES_CHAINS.egress];

const expectedCache = new Map<string, IptDocument>();

/** The host-only part the renderer writes for `options`, parsed. */
export function expectedHostOnlyPart(options: ResolvedHostPolicyOptions, family: Family): IptDocument {
  const key = `${family}|${JSON.stringify(options)}`;
  let doc = expectedCache.get(key);
  if (doc === undefined) {
    doc = parseIptablesRestore(renderHostOnlyPart(options, family), family);
    if (doc.problems.length > 0) throw new Error(`twinwall bug: the checker cannot read the host-only part the renderer writes: ${JSON.stringify(doc.problems)}`);
    expectedCache.set(key, doc);
  }
  return doc;
}

/** "audit off, instanceMetadata root-only". */
export function describeOptions(options: ResolvedHostPolicyOptions): string {
  return Object.entries(options)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => (typeof v === 'boolean' ? `${k} ${v ? 'on' : 'off'}` : `${k} ${Array.isArray(v) ? (v.length === 0 ? 'none' : v.join(', ')) : String(v)}`))
    .join(', ');
}

/** A rule as written, without its comment match. */
function ruleText(rule: IptRule): string {
  return rule.text.replace(/\s*-m comment --comment ("(?:[^"\\]|\\.)*"|\S+)/g, '').trim();
}

function purpose(rule: IptRule): string | undefined {
  return rule.comment === undefined ? undefined : ownRuleWhat(rule.comment);
}

function shown(rule: IptRule): string {
  const p = purpose(rule);
  return `${p !== undefined ? `"${p}" ` : ''}(${ruleText(rule)})`;
}

type Op = { kind: 'same'; e: IptRule; a: IptRule } | { kind: 'missing'; e: IptRule } | { kind: 'extra'; a: IptRule };

/** Longest common subsequence of two rule lists by meaning, as edit operations in order. */
function diffRules(expected: readonly IptRule[], actual: readonly IptRule[]): Op[] {
  const n = expected.length;
  const m = actual.length;
  const len: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) len[i][j] = expected[i].verdictKey === actual[j].verdictKey ? len[i + 1][j + 1] + 1 : Math.max(len[i + 1][j], len[i][j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i].verdictKey === actual[j].verdictKey) ops.push({ kind: 'same', e: expected[i++], a: actual[j++] });
    else if (j < m && (i >= n || len[i][j + 1] >= len[i + 1][j])) ops.push({ kind: 'extra', a: actual[j++] });
    else ops.push({ kind: 'missing', e: expected[i++] });
  }
  return ops;
}

/** One difference of a chain from the chain the renderer writes; `extra` when the rule is not in it at all. */
interface ChainDifference {
  readonly text: string;
  readonly extra?: IptRule;
}

/**
 * The differences of chain `a` from the expected chain `c`, rule by rule by meaning. Within each
 * run of differences, the i-th rule found stands where the i-th rule required stood: those are
 * reported as changed, the rest as missing or not required.
 */
function chainDifferences(label: string, record: string, c: IptChain, a: IptChain): ChainDifference[] {
  const out: ChainDifference[] = [];
  const ops = diffRules(c.rules, a.rules);
  for (let k = 0; k < ops.length; ) {
    if (ops[k].kind === 'same') {
      k++;
      continue;
    }
    const run: Op[] = [];
    while (k < ops.length && ops[k].kind !== 'same') run.push(ops[k++]);
    const missing = run.filter((o): o is Extract<Op, { kind: 'missing' }> => o.kind === 'missing');
    const extra = run.filter((o): o is Extract<Op, { kind: 'extra' }> => o.kind === 'extra');
    for (let x = 0; x < Math.max(missing.length, extra.length); x++) {
      const mi = missing[x];
      const ex = extra[x];
      if (mi !== undefined && ex !== undefined) out.push({ text: `${label}: ${c.name} rule ${ex.a.number} is ${shown(ex.a)}; ${record} requires ${shown(mi.e)}` });
      else if (mi !== undefined) out.push({ text: `${label}: ${c.name} lacks ${shown(mi.e)} (rule ${mi.e.number} in the ${label.includes('fallback') ? 'fallback' : 'host wall'} the renderer writes), which ${record} requires` });
      else if (ex !== undefined) out.push({ text: `${label}: ${c.name} rule ${ex.a.number} ${shown(ex.a)} is not in the ${label.includes('fallback') ? 'fallback' : 'host wall'} the renderer writes for ${record}`, extra: ex.a });
    }
  }
  return out;
}

export interface HostOnlyComparison {
  /** Each difference, one line a reviewer understands. */
  readonly differences: readonly string[];
  /** What was verified, when nothing differs. */
  readonly verified?: string;
}

/** Compare the host-only part of one family's table with what the renderer writes for `options`. */
export function compareHostOnlyPart(actual: IptDocument, options: ResolvedHostPolicyOptions, family: Family): HostOnlyComparison {
  const label = `IPv${family} host-only part`;
  const record = `the record (${describeOptions(options)})`;
  const expected = expectedHostOnlyPart(options, family).tables.get('filter') as { chains: ReadonlyMap<string, IptChain> };
  const table = actual.tables.get('filter');
  if (table === undefined) return { differences: [`${label}: the table has no *filter block, so none of the host-only rules ${record} requires is there`] };
  const out: string[] = [];
  for (const c of expected.chains.values()) {
    const a = table.chains.get(c.name);
    if (a === undefined) {
      out.push(`${label}: chain ${c.name} is missing; ${record} requires it${c.rules.length > 0 ? ` with ${c.rules.map(shown).join(', ')}` : ''}`);
      continue;
    }
    if (c.builtin && a.policy !== c.policy) out.push(`${label}: ${c.name} has policy ${a.policy}; ${record} requires ${c.policy}`);
    if (POLICY_CHAINS.includes(c.name)) continue;
    out.push(...chainDifferences(label, record, c, a).map((d) => d.text));
  }
  for (const a of table.chains.values()) {
    if (!expected.chains.has(a.name)) out.push(`${label}: chain ${a.name} is not in the host wall the renderer writes for ${record}`);
  }
  if (out.length > 0) return { differences: out };
  const frame = [...expected.chains.values()].filter((c) => !POLICY_CHAINS.includes(c.name));
  const rules = frame.reduce((n, c) => n + c.rules.length, 0);
  const purposes = [...new Set(frame.flatMap((c) => c.rules.map(purpose)).filter((p): p is string => p !== undefined))];
  const logs = frame.filter((c) => !c.builtin).length;
  const policies = frame.filter((c) => c.builtin).map((c) => `${c.name} ${c.policy}`).join(', ');
  return {
    differences: [],
    verified: `${label} as recorded (${describeOptions(options)}): all ${rules} rules outside the policy chains are present exactly as the renderer writes them, with policies ${policies} — ${purposes.join('; ')}; and ${logs} log-then-${options.audit ? 'accept' : 'drop'} chains with their LOG prefixes and rate limits`,
  };
}

/** A piece of traffic the host-only part admits by itself (not through a policy chain). */
export interface HostOnlyDecision {
  readonly box: Box;
  /** The deciding rule. */
  readonly step: Step;
}

const decisionCache = new Map<string, HostOnlyDecision[]>();

/**
 * The new connections the host-only part itself admits in one direction and family (an ACCEPT in
 * INPUT or OUTPUT, before any policy chain), each with its rule: DHCP, for instance. A rule that
 * admits nothing but link-local service addresses (the metadata mode's) is left out: those
 * addresses are their own exception.
 */
export function hostOnlyDecisions(options: ResolvedHostPolicyOptions, direction: Direction, family: Family): HostOnlyDecision[] {
  const key = `${family}|${direction}|${JSON.stringify(options)}`;
  let out = decisionCache.get(key);
  if (out === undefined) {
    const model: DirectionModel = modelDirection(expectedHostOnlyPart(options, family).tables.get('filter'), { family, direction, ipsets: new Map() });
    const linkLocal = Region.of(linkLocalServices(family).map((ll) => Box.where(familyBits(family), { remote: IntervalSet.of(ll.value) })));
    const byRule = new Map<number, HostOnlyDecision[]>();
    for (const a of model.admitted) {
      const last = a.path[a.path.length - 1];
      if (last === undefined || a.path.length !== 1 || last.number === undefined) continue; // through a chain, or a policy
      byRule.set(last.number, [...(byRule.get(last.number) ?? []), { box: a.box, step: last }]);
    }
    out = [...byRule.values()].filter((list) => !Region.of(list.map((d) => d.box)).subtract(linkLocal).isEmpty).flat();
    decisionCache.set(key, out);
  }
  return out;
}

/**
 * The shape of an admin ingress rule in a fallback, as renderFallback writes it: a source, a
 * protocol, ports or an ICMP type, and for TCP and UDP new connections only (what those rules
 * admit is then held to the real table).
 */
const ADMIN_RULE_SHAPE: Record<Family, RegExp> = {
  4: /^(-s \S+ )?(-p (tcp|udp)( -m (tcp|udp) --dport \d+(:\d+)?)? -m conntrack --ctstate NEW |-p icmp( -m icmp --icmp-type \d+(\/\d+)?)? )?-j ACCEPT$/,
  6: /^(-s \S+ )?(-p (tcp|udp)( -m (tcp|udp) --dport \d+(:\d+)?)? -m conntrack --ctstate NEW |-p ipv6-icmp( -m icmp6 --icmpv6-type \d+(\/\d+)?)? )?-j ACCEPT$/,
};

/** The fallback the renderer writes for `options` and a host without admin roles, parsed. */
export function expectedFallbackPart(options: ResolvedHostPolicyOptions, family: Family): IptDocument {
  const key = `fallback|${family}|${JSON.stringify(options)}`;
  let doc = expectedCache.get(key);
  if (doc === undefined) {
    doc = parseIptablesRestore(renderFallbackPart(options, family), family);
    if (doc.problems.length > 0) throw new Error(`twinwall bug: the checker cannot read the fallback the renderer writes: ${JSON.stringify(doc.problems)}`);
    expectedCache.set(key, doc);
  }
  return doc;
}

/**
 * Compare one family's fallback (the table its loader puts in place before the real one, and
 * what stays when the real one fails: onLoadFailure lockdown) with the record. Lockdown: the
 * fallback must be there, and be exactly what the renderer writes for the recorded options —
 * DROP policies, loopback, replies, DHCP to where a server can be, neighbour discovery — plus
 * ACCEPT rules in INPUT (the admin roles' ingress), each of which may admit only what the real
 * table admits (`realIngress`, the enforcing model of the real table). Which of the real
 * table's rules are administration is not recorded, so a fallback without its admin rules is
 * narrower than rendered but not a finding; anything wider is. Open: no fallback may be shipped.
 */
export function compareFallback(
  actual: { readonly path: string; readonly text: string } | undefined,
  options: ResolvedHostPolicyOptions,
  family: Family,
  realIngress: DirectionModel | undefined,
  /** The fallback already read (an nftables fallback, nft-parse.ts); default: parse `actual` as iptables-restore. */
  read?: IptDocument,
): HostOnlyComparison {
  const label = `IPv${family} fallback`;
  const record = `the record (onLoadFailure ${options.onLoadFailure})`;
  if (options.onLoadFailure === 'open') {
    if (actual === undefined) return { differences: [], verified: `${label}: none, as recorded (onLoadFailure open): a table that fails to load at boot leaves IPv${family} unfiltered on the host, behind the security group` };
    return { differences: [`${label}: the user-data ships one (${actual.path}), but ${record} says a failed load leaves the family open; the artefacts do not say what was meant`] };
  }
  if (actual === undefined) {
    return { differences: [`${label}: the user-data ships none, but ${record} requires one: a table that fails to load at boot would leave IPv${family} unfiltered on the host`] };
  }
  const doc = read ?? parseIptablesRestore(actual.text, family);
  if (doc.problems.length > 0) return { differences: doc.problems.map((p) => `${label} (${actual.path}) line ${p.line}: ${p.message}`) };
  const other = unmodelledTables(doc);
  if (other.length > 0) return { differences: [`${label} (${actual.path}) has tables other than filter (${other.join(', ')}), which a fallback never needs and the checker does not model`] };
  const table = doc.tables.get('filter');
  if (table === undefined) return { differences: [`${label} (${actual.path}) has no *filter block: it closes nothing`] };
  const expected = expectedFallbackPart(options, family).tables.get('filter') as { chains: ReadonlyMap<string, IptChain> };
  const out: string[] = [];
  const admin: IptRule[] = [];
  for (const c of expected.chains.values()) {
    const a = table.chains.get(c.name);
    if (a === undefined) {
      out.push(`${label}: chain ${c.name} is missing; ${record} requires it`);
      continue;
    }
    if (c.builtin && a.policy !== c.policy) out.push(`${label}: ${c.name} has policy ${a.policy}; ${record} requires ${c.policy}`);
    for (const d of chainDifferences(label, record, c, a)) {
      if (c.name === 'INPUT' && d.extra !== undefined && ADMIN_RULE_SHAPE[family].test(ruleText(d.extra))) admin.push(d.extra);
      else out.push(d.text);
    }
  }
  for (const a of table.chains.values()) if (!expected.chains.has(a.name)) out.push(`${label}: chain ${a.name} is not in the fallback the renderer writes for ${record}`);
  if (out.length > 0) return { differences: out };
  // The admin ingress: whatever those rules admit, the real table must admit too.
  const model = modelDirection(table, { family, direction: 'ingress', ipsets: new Map() });
  for (const u of model.undecidable) out.push(`${label}: the checker cannot model ${describeFlow(u.box, 'ingress', family)} (${u.reason}), so it cannot tell whether the fallback admits more than the real table`);
  if (admin.length > 0) {
    if (realIngress === undefined) out.push(`${label}: INPUT has ${admin.length} rules beyond the host-only part (admin ingress), and the real table could not be read to hold them to`);
    else {
      const real = Region.of(realIngress.admitted.map((d) => d.box));
      const numbers = new Set(admin.map((r) => r.number));
      for (const d of model.admitted) {
        const last = d.path[d.path.length - 1];
        if (last?.chain !== 'INPUT' || !numbers.has(last.number as number)) continue;
        const wider = Region.of([d.box]).subtract(real);
        if (!wider.isEmpty) out.push(`${label}: INPUT rule ${last.number} (${last.text ?? last.action}) admits ${wider.boxes.map((b) => describeFlow(b, 'ingress', family)).join('; ')}, which the real table does not: a fallback may only keep the admin roles' ingress`);
      }
    }
  }
  if (out.length > 0) return { differences: out };
  const core = [...expected.chains.values()].reduce((n, c) => n + c.rules.length, 0);
  return {
    differences: [],
    verified: `${label} as recorded (onLoadFailure lockdown, ${actual.path} and bootcmd's copy): DROP policies and all ${core} core rules (loopback, replies, DHCP${family === 6 ? ', neighbour discovery' : ''}) exactly as the renderer writes them, and ${admin.length} admin ingress rule${admin.length === 1 ? '' : 's'}, none admitting more than the real table (which rules are administration is not recorded, so a fallback without them would pass)`,
  };
}

const narrowingCache = new Map<string, HostOnlyDecision[]>();

/**
 * The new connections the host-only part itself drops on purpose before the policy chains, in
 * one direction and family, each with its rule: what only a router sends (IPv6 router
 * advertisements and redirects, ROUTER_ONLY in the renderer) to the direction's log-and-drop
 * chain. A policy that admits every ICMPv6 type out gets them from the security group, never
 * from the host: a difference the record requires, like the metadata service for root only.
 * Computed from the enforcing host-only part (audit mode is compared as enforcing).
 */
export function hostOnlyNarrowings(options: ResolvedHostPolicyOptions, direction: Direction, family: Family): HostOnlyDecision[] {
  const enforcing: ResolvedHostPolicyOptions = { ...options, audit: false };
  const key = `${family}|${direction}|${JSON.stringify(enforcing)}`;
  let out = narrowingCache.get(key);
  if (out === undefined) {
    const table = expectedHostOnlyPart(enforcing, family).tables.get('filter');
    const base = direction === 'ingress' ? 'INPUT' : 'OUTPUT';
    const policy = direction === 'ingress' ? IPTABLES_CHAINS.ingress : IPTABLES_CHAINS.egress;
    const drop = direction === 'ingress' ? IPTABLES_CHAINS.ingressDrop : IPTABLES_CHAINS.egressDrop;
    const jump = table?.chains.get(base)?.rules.find((r) => r.target?.name === policy)?.number ?? 0;
    const model = modelDirection(table, { family, direction, ipsets: new Map() });
    out = model.dropped.flatMap((d) => {
      const first = d.path[0];
      return first !== undefined && first.chain === base && first.number !== undefined && first.number < jump && first.action === `jump ${drop}` ? [{ box: d.box, step: first }] : [];
    });
    narrowingCache.set(key, out);
  }
  return out;
}
