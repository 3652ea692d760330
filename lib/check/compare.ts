/**
 * `twinwall check`: rebuild both walls of every host from the synthesized artefacts (the
 * security-group rules in the Terraform JSON, the iptables-restore tables in the user-data) and
 * compare what they admit, exactly, over the whole flow space.
 *
 * First the host-only part of each table (everything outside the policy chains) is compared with
 * what the renderer writes for the options recorded in the artefacts (host-only.ts): any
 * difference is a finding, and without a readable record it cannot be checked (a finding too).
 * Then the walls must admit the same first packets of new connections, except (DESIGN
 * "Consistency" and "Host wall"), each listed in the report when it was applied:
 * - what the host-only part admits by itself, as the renderer writes it for the record (DHCP:
 *   udp 67→68 in, 68→67 out, the IPv4 DHCPDISCOVER from 0.0.0.0; DHCPv6), which security
 *   groups do not filter — derived from the renderer, so a change there changes it here;
 * - what the host-only part drops on purpose before the policy (IPv6 router advertisements and
 *   redirects out: a host is not a router), which a policy admitting every ICMPv6 type gets
 *   from the security group only — derived from the renderer the same way;
 * - the AWS link-local service addresses (169.254.169.253/.254/.123, fd00:ec2::253/254/123):
 *   security groups never filter them, so the host wall alone decides (IMDS root-only included);
 * - security-group and prefix-list references, compared through their recorded host-side CIDRs.
 * In audit mode (recorded, and the audit chains verified) the walls are compared as enforcing.
 * Outbound packets with a forged source address must be dropped by the host wall (what the
 * host-only part admits aside). Everything the checker cannot decide is reported as undecidable.
 */
import { FAMILIES, Family, familyBits } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { ResolvedHostPolicyOptions, resolveHostPolicyOptions } from '../policy';
import { linkLocalServices } from './addresses';
import { describeFlow, describePath } from './describe';
import { POLICY_CHAINS, compareFallback, compareHostOnlyPart, expectedHostOnlyPart, hostOnlyDecisions, hostOnlyNarrowings } from './host-only';
import { DirectionModel, ModelContext, Step, modelDirection, unmodelledTables } from './host-model';
import { IptChain, IptDocument, IptTable, parseIptablesRestore } from './iptables-parse';
import { HOST_WALL_TAG } from './record';
import { NetworkDirectionModel, modelNetwork } from './network-model';
import { Box, IntervalSet, Region, mergeBoxes } from './space';
import { HostArtefact, readStack } from './terraform';
import { HostWallSource, decodeUserData, readHostWall } from './user-data';
import { AWS_LINK_LOCAL_LABEL } from '../peer';
import { parseNftables } from './nft-parse';
import { ownRuleWhat } from '../provenance';

export type FindingKind = 'host-only' | 'network-only' | 'forged-source' | 'undecidable' | 'artefact' | 'host-only-part';

export interface Finding {
  readonly kind: FindingKind;
  readonly direction?: Direction;
  readonly family?: Family;
  readonly box?: Box;
  /** One line a reviewer understands (without the host prefix). */
  readonly text: string;
}

export interface HostModels {
  readonly host: Record<Direction, Record<Family, DirectionModel>>;
  readonly network: Record<Direction, Record<Family, NetworkDirectionModel>>;
}

export interface HostCheck {
  readonly host: HostArtefact;
  /** "staging/sample". */
  readonly label: string;
  readonly wall: HostWallSource;
  readonly documents: Partial<Record<Family, IptDocument>>;
  readonly models: HostModels;
  /**
   * The host wall's models the network wall was compared with: `models.host`, or in audit mode
   * (recorded, and its audit chains verified) the same tables as enforcing.
   */
  readonly compared: HostModels['host'];
  readonly findings: readonly Finding[];
  /** The exceptions applied, one line each. */
  readonly exceptions: readonly string[];
  /** The host-wall options recorded in the artefacts (null: no readable record). */
  readonly wallOptions: ResolvedHostPolicyOptions | null;
  readonly ms: number;
}

export interface CheckReport {
  readonly hosts: readonly HostCheck[];
  /** Problems with the input as a whole (no stacks, unreadable stack). */
  readonly problems: readonly string[];
}

export interface StackInput {
  readonly name: string;
  readonly json: unknown;
}


export interface ExceptionRegion {
  readonly id: string;
  /**
   * 'host-only-part': admitted by the host-only part itself (checked against the record);
   * 'host-only-narrowed': dropped by it on purpose before the policy (a host is not a router);
   * 'link-local': a link-local service address.
   */
  readonly kind: 'host-only-part' | 'host-only-narrowed' | 'link-local';
  readonly region: Region;
  /** Applies in the forged-source space too. */
  readonly forged: boolean;
  readonly describe: (uses: readonly Box[], models: HostModels) => string;
}

/** The options every host wall had before twinwall recorded them, for callers without a host. */
const DEFAULT_OPTIONS = resolveHostPolicyOptions({});

/**
 * The documented exceptions of one direction and family, as regions (see the file comment): what
 * the host-only part the renderer writes for `options` admits by itself (DHCP …; null: no record,
 * so nothing is excused), then the link-local service addresses.
 */
export function exceptionRegions(direction: Direction, family: Family, options: ResolvedHostPolicyOptions | null = DEFAULT_OPTIONS): ExceptionRegion[] {
  const out: ExceptionRegion[] = [];
  // The host-only part's decisions, one exception per rule that makes them.
  const perRule = (decisions: readonly { step: Step; box: Box }[], make: (what: string) => Pick<ExceptionRegion, 'id' | 'kind' | 'forged'>): void => {
    const byRule = new Map<string, { step: Step; boxes: Box[] }>();
    for (const d of decisions) {
      const k = `${d.step.chain}:${d.step.number}`;
      const g = byRule.get(k) ?? { step: d.step, boxes: [] };
      g.boxes.push(d.box);
      byRule.set(k, g);
    }
    for (const { step, boxes } of byRule.values()) {
      const what = step.comment === undefined ? `${step.chain} rule ${step.number}` : ownRuleWhat(step.comment);
      out.push({
        ...make(what),
        region: Region.of(boxes),
        // One part of the line checkHost writes for all of a direction's host-only decisions.
        describe: (uses) => `${what} (${mergeBoxes(uses).map((b) => describeFlow(b, direction, family)).join('; ')}) by ${step.chain} rule ${step.number}`,
      });
    }
  };
  perRule(options === null ? [] : hostOnlyDecisions(options, direction, family), (what) => ({ id: `host-only ${what}`, kind: 'host-only-part', forged: true }));
  // Dropped on purpose, only in the host's own source space: a forged packet must be dropped anyway.
  perRule(options === null ? [] : hostOnlyNarrowings(options, direction, family), (what) => ({ id: `host-only narrowed ${what}`, kind: 'host-only-narrowed', forged: false }));
  for (const ll of linkLocalServices(family)) {
    const box = Box.where(familyBits(family), { remote: IntervalSet.of(ll.value) });
    out.push({
      id: `link-local ${ll.address}`,
      kind: 'link-local',
      region: Region.of([box]),
      forged: false,
      describe: (_uses, models) => {
        const host = models.host[direction][family].admitted.flatMap((a) => {
          const i = a.box.intersect(box);
          return i === undefined ? [] : [i];
        });
        const admits = host.length === 0 ? 'admits nothing' : `admits ${mergeBoxes(host).map((b) => describeFlow(b, direction, family).replace(/^(ingress|egress) /, '')).join('; ')}`;
        return `host-only destination ${ll.address} (${AWS_LINK_LOCAL_LABEL[ll.service]}, ${direction}): security groups never filter it, so the host wall alone decides; it ${admits}${ll.service === 'instanceMetadata' && direction === 'egress' ? ' (instanceMetadata narrows it on purpose)' : ''}`;
      },
    });
  }
  return out;
}

function pathKey(path: readonly { chain: string; number?: number; action: string }[]): string {
  return path.map((s) => `${s.chain}:${s.number ?? 'p'}:${s.action}`).join('>');
}

/** Merge pieces that share a label, then print each merged box once. */
function lines<T>(pieces: readonly { box: Box; label: T }[], keyOf: (l: T) => string, print: (box: Box, label: T) => string): { box: Box; text: string }[] {
  const groups = new Map<string, { label: T; boxes: Box[] }>();
  for (const p of pieces) {
    const k = keyOf(p.label);
    const g = groups.get(k) ?? { label: p.label, boxes: [] };
    g.boxes.push(p.box);
    groups.set(k, g);
  }
  const out: { box: Box; text: string }[] = [];
  for (const g of groups.values()) for (const box of mergeBoxes(g.boxes)) out.push({ box, text: print(box, g.label) });
  return out;
}

/** How reports name a host: "staging/sample". */
export function hostLabel(host: Pick<HostArtefact, 'stack' | 'name'>): string {
  return `${host.stack}/${host.name}`;
}

/** The host wall one host's user-data ships. */
export function hostWallOf(host: HostArtefact): HostWallSource {
  try {
    if (host.userData === undefined) throw new Error('the host has no user-data, so it ships no host wall');
    const decoded = decodeUserData(host.userData);
    return readHostWall(decoded.text, decoded.gzipped);
  } catch (e) {
    return { gzipped: false, tables: {}, firstBoot: {}, fallback: {}, ipsets: new Map(), ipsetScript: '', problems: [(e as Error).message] };
  }
}

/**
 * Read the host wall of one host: user-data → tables → parsed documents (`shipped`: the host wall
 * as already read, e.g. from a rendering, lib/check/rendering.ts).
 */
export function readHostTables(host: HostArtefact, shipped?: HostWallSource): { wall: HostWallSource; documents: Partial<Record<Family, IptDocument>>; problems: string[] } {
  const problems: string[] = [];
  let wall = shipped ?? hostWallOf(host);
  problems.push(...wall.problems);
  const documents: Partial<Record<Family, IptDocument>> = {};
  if (wall.nftables !== undefined) {
    // One nftables file for both families (nft-parse.ts), its interval sets the wall's sets.
    const nft = parseNftables(wall.nftables.text);
    for (const p of nft.problems) problems.push(`${wall.nftables.path} line ${p.line}: ${p.message}`);
    for (const family of FAMILIES) documents[family] = nft.documents[family];
    wall = { ...wall, ipsets: new Map([...wall.ipsets, ...nft.sets]) };
    return { wall, documents, problems };
  }
  for (const family of FAMILIES) {
    const t = wall.tables[family];
    if (t === undefined) {
      // No table for this family: the loader leaves its fallback in place (onLoadFailure
      // lockdown), so that is what the host enforces; without a fallback nothing is loaded.
      const kept = wall.fallback[family];
      if (kept !== undefined) documents[family] = parseIptablesRestore(kept.text, family);
      continue;
    }
    // The sets the user-data creates exist when the tables load; any other set makes
    // iptables-restore refuse the table.
    const ipsets = new Map([...wall.ipsets.values()].map((d) => [d.name, d.family] as const));
    const doc = parseIptablesRestore(t.text, family, { ipsets });
    documents[family] = doc;
    for (const p of doc.problems) problems.push(`${t.path} line ${p.line}: ${p.message}`);
    const other = unmodelledTables(doc);
    if (other.length > 0) problems.push(`${t.path} has rules in the ${other.join(', ')} table(s), which twinwall does not model`);
    if (!doc.tables.has('filter')) problems.push(`${t.path} has no *filter table`);
  }
  return { wall, documents, problems };
}

/** Build both walls' models of one host. */
export function modelHost(host: HostArtefact, wall: HostWallSource, documents: Partial<Record<Family, IptDocument>>): HostModels {
  const hostModels = {} as Record<Direction, Record<Family, DirectionModel>>;
  const network = {} as Record<Direction, Record<Family, NetworkDirectionModel>>;
  for (const direction of DIRECTIONS) {
    hostModels[direction] = {} as Record<Family, DirectionModel>;
    network[direction] = {} as Record<Family, NetworkDirectionModel>;
    for (const family of FAMILIES) {
      const ctx: ModelContext = { family, direction, ipsets: wall.ipsets };
      const doc = documents[family];
      const broken = doc !== undefined && (doc.problems.length > 0 || unmodelledTables(doc).length > 0);
      let m = modelDirection(doc?.tables.get('filter'), ctx);
      if (broken) {
        // A table iptables-restore would reject, or one with unmodelled tables: nothing is certain.
        m = { ...m, admitted: [], dropped: [], undecidable: m.universe.boxes.map((box) => ({ box, reason: `the IPv${family} table cannot be fully read (see the problems above)`, path: [] })) };
      }
      hostModels[direction][family] = m;
      network[direction][family] = modelNetwork(host.rules, direction, family, host.problems);
    }
  }
  return { host: hostModels, network };
}

interface HostOnlyPartCheck {
  /** The recorded options, or null when there is no readable record. */
  readonly options: ResolvedHostPolicyOptions | null;
  readonly findings: Finding[];
  readonly verified: string[];
  /** The host models the walls are compared with (audit mode: as enforcing). */
  readonly compared: Record<Direction, Record<Family, DirectionModel>>;
}

/** A table with the log-then-drop chains of the enforcing host-only part in place of its own. */
function asEnforcing(table: IptTable, options: ResolvedHostPolicyOptions, family: Family): IptTable {
  const enforcing = expectedHostOnlyPart({ ...options, audit: false }, family).tables.get('filter') as IptTable;
  const chains = new Map<string, IptChain>(table.chains);
  for (const c of enforcing.chains.values()) if (!c.builtin && !POLICY_CHAINS.includes(c.name)) chains.set(c.name, c);
  return { name: table.name, chains };
}

/**
 * Check the host-only part of both tables against the host-wall record (host-only.ts). In audit
 * mode, once the audit chains are verified to be exactly the recorded ones, the walls are
 * compared as if it were enforcing: audit mode admits on purpose what enforcement would drop.
 */
function checkHostOnly(host: HostArtefact, wall: HostWallSource, documents: Partial<Record<Family, IptDocument>>, models: HostModels): HostOnlyPartCheck {
  const compared = { ingress: { ...models.host.ingress }, egress: { ...models.host.egress } };
  const rec = host.wallRecord;
  const cannot = 'the host-only part of the host wall (DHCP, neighbour discovery and ICMP errors, instance metadata, the forged-source drop, logging and audit mode, the DROP policies) cannot be checked against the policy';
  if (rec === undefined) return { options: null, findings: [{ kind: 'host-only-part', text: `no host-wall record (tag ${HOST_WALL_TAG} on the host's security group): ${cannot}` }], verified: [], compared };
  if ('problem' in rec) return { options: null, findings: [{ kind: 'host-only-part', text: `${rec.problem} (${rec.source}): ${cannot}` }], verified: [], compared };
  const options = rec.options;
  const findings: Finding[] = [];
  const verified: string[] = [];
  // The backend the record names must be the one the user-data ships: the host-only part and the
  // fallback are rendered, and so checked, per backend.
  const iptablesPaths = FAMILIES.flatMap((f) => (wall.tables[f] === undefined ? [] : [wall.tables[f]?.path as string]));
  const shipped = wall.nftables !== undefined ? { backend: 'nftables', where: wall.nftables.path } : iptablesPaths.length > 0 ? { backend: 'iptables', where: iptablesPaths.join(', ') } : undefined;
  if (shipped !== undefined && shipped.backend !== rec.hostFirewall) {
    findings.push({
      kind: 'host-only-part',
      text: `the host-wall record (${rec.source}) says hostFirewall=${rec.hostFirewall}, but the user-data ships the ${shipped.backend} wall (${shipped.where}): the host does not run the backend it was synthesized with`,
    });
  }
  const checkFamily = (doc: IptDocument, family: Family): void => {
    const cmp = compareHostOnlyPart(doc, options, family);
    for (const text of cmp.differences) findings.push({ kind: 'host-only-part', family, text });
    if (cmp.verified === undefined) return;
    verified.push(cmp.verified);
    if (options.audit) {
      const table = asEnforcing(doc.tables.get('filter') as IptTable, options, family);
      for (const direction of DIRECTIONS) compared[direction][family] = modelDirection(table, { family, direction, ipsets: wall.ipsets });
      verified.push(`IPv${family} audit mode, as recorded: the host wall logs and then admits what enforcement would drop, so the walls are compared as enforcing`);
    }
  };
  // An nftables wall's fallback is one file for both families, read like the wall (nft-parse.ts).
  const nftFallback = wall.nftables?.fallback !== undefined ? parseNftables(wall.nftables.fallback) : undefined;
  for (const family of FAMILIES) {
    const doc = documents[family];
    const readable = doc !== undefined && doc.problems.length === 0 && unmodelledTables(doc).length === 0;
    if (readable) checkFamily(doc, family);
    // The fallback, once the real table's model is final (audit mode: as enforcing).
    const fb = compareFallback(wall.fallback[family], options, family, readable ? compared.ingress[family] : undefined, nftFallback?.documents[family]);
    for (const text of fb.differences) findings.push({ kind: 'host-only-part', family, text });
    if (fb.verified !== undefined) verified.push(fb.verified);
  }
  return { options, findings, verified, compared };
}

/** Compare one host's walls (`shipped`: its host wall as already read, else from its user-data). */
export function checkHost(host: HostArtefact, shipped?: HostWallSource): HostCheck {
  const t0 = Date.now();
  const { wall, documents, problems } = readHostTables(host, shipped);
  const models = modelHost(host, wall, documents);
  const findings: Finding[] = problems.map((text) => ({ kind: 'artefact' as const, text }));
  const part = checkHostOnly(host, wall, documents, models);
  findings.push(...part.findings);
  const exceptions: string[] = [...part.verified];
  for (const direction of DIRECTIONS) {
    for (const family of FAMILIES) {
      const hm = part.compared[direction][family];
      const nm = models.network[direction][family];
      const bits = familyBits(family);
      const own = hm.universe.intersectBox(Box.where(bits, { kind: IntervalSet.of(0) }));
      const forged = hm.universe.intersectBox(Box.where(bits, { kind: IntervalSet.of(1) }));
      const hostAdmitted = Region.of(hm.admitted.map((a) => a.box));
      const netAdmitted = Region.of(nm.admitted.map((a) => a.box));
      // The network wall has no say over forged sources, so its undecidable parts count in the
      // host's own address space only.
      const netUndecidable = nm.undecidable.flatMap((u) => own.intersectBox(u.box).boxes.map((box) => ({ box, reason: u.reason })));
      const undecided = Region.of([...hm.undecidable.map((u) => u.box), ...netUndecidable.map((u) => u.box)]);
      const regions = exceptionRegions(direction, family, part.options);
      const uses = new Map<string, Box[]>();
      const classify = (region: Region, inForged: boolean): Region => {
        let rest = region;
        for (const e of regions) {
          if (inForged && !e.forged) continue;
          const used = rest.intersect(e.region);
          if (used.isEmpty) continue;
          uses.set(e.id, [...(uses.get(e.id) ?? []), ...used.boxes]);
          rest = rest.subtract(e.region);
        }
        return rest;
      };
      const hostOnly = hm.admitted.flatMap((a) =>
        classify(Region.of([a.box]).intersect(own).subtract(netAdmitted).subtract(undecided), false).boxes.map((box) => ({ box, label: a.path })),
      );
      const netOnly = nm.admitted.flatMap((a) =>
        classify(Region.of([a.box]).intersect(own).subtract(hostAdmitted).subtract(undecided), false).boxes.map((box) => ({ box, label: a.rule })),
      );
      const forgedOut = hm.admitted.flatMap((a) => classify(Region.of([a.box]).intersect(forged).subtract(undecided), true).boxes.map((box) => ({ box, label: a.path })));
      for (const { box, text } of lines(hostOnly, pathKey, (b, path) => `${describeFlow(b, direction, family)}: the host wall admits it (${describePath(path)}), the network wall does not`)) {
        findings.push({ kind: 'host-only', direction, family, box, text });
      }
      for (const { box, text } of lines(netOnly, (r) => r.address, (b, r) => `${describeFlow(b, direction, family)}: the network wall admits it (${r.address}${r.description !== undefined ? ` "${r.description}"` : ''}), the host wall does not`)) {
        findings.push({ kind: 'network-only', direction, family, box, text });
      }
      for (const { box, text } of lines(forgedOut, pathKey, (b, path) => `${describeFlow(b, direction, family)}: the host wall lets it out (${describePath(path)}); packets with a forged source must be dropped`)) {
        findings.push({ kind: 'forged-source', direction, family, box, text });
      }
      const und = [...hm.undecidable.map((u) => ({ box: u.box, label: `host wall: ${u.reason}` })), ...netUndecidable.map((u) => ({ box: u.box, label: `network wall: ${u.reason}` }))];
      for (const { box, text } of lines(und, (l) => l, (b, reason) => `${describeFlow(b, direction, family)}: undecidable (${reason})`)) {
        findings.push({ kind: 'undecidable', direction, family, box, text });
      }
      const decided: string[] = [];
      const dropped: string[] = [];
      for (const e of regions) {
        const u = uses.get(e.id);
        if (u === undefined) continue;
        if (e.kind === 'host-only-part') decided.push(e.describe(u, models));
        else if (e.kind === 'host-only-narrowed') dropped.push(e.describe(u, models));
        else exceptions.push(e.describe(u, models));
      }
      if (decided.length > 0) {
        exceptions.push(`host-only part, IPv${family} ${direction}: the host wall admits by itself, present exactly as the record requires (security groups do not filter it): ${decided.join('; ')}`);
      }
      if (dropped.length > 0) {
        exceptions.push(`host-only part, IPv${family} ${direction}: the host wall drops on purpose what the network wall admits, as the record requires (a host is not a router): ${dropped.join('; ')}`);
      }
      if (family === 4) {
        for (const r of nm.references) {
          const p = r.peer;
          if (p === undefined || p.kind === 'cidr' || p.cidrs === undefined) continue;
          exceptions.push(
            `${p.kind === 'securityGroup' ? 'security-group' : 'prefix-list'} reference: ${r.address} names ${p.ref}; compared through its host-side CIDRs ${p.cidrs.map((c) => c.text).join(', ')} (${p.source})`,
          );
        }
      }
    }
  }
  if (host.sourceDestCheck === false) findings.push({ kind: 'artefact', text: `${host.address} sets source_dest_check = false: AWS would let this host send and receive traffic that is not its own` });
  return { host, label: hostLabel(host), wall, documents, models, compared: part.compared, findings, exceptions: [...new Set(exceptions)], wallOptions: part.options, ms: Date.now() - t0 };
}

/** The hosts a check judges, in report order, and the problems of the input as a whole. */
export interface FleetPlan {
  readonly hosts: readonly HostArtefact[];
  readonly problems: readonly string[];
}

/**
 * Every host of every stack, in the order the report lists them, handed to `each` one stack at a
 * time; returns the problems of the input as a whole. `stacks` may be lazy (a generator that
 * parses each stack when asked): nothing here keeps a stack once its hosts are handed on, so a
 * caller that keeps only what it packs (fleet.ts, `PackedPlan.of`) holds one stack's parsed
 * input at a time.
 */
export function planStacks(stacks: Iterable<StackInput>, each: (host: HostArtefact) => void): string[] {
  const problems: string[] = [];
  let count = 0;
  for (const s of stacks) {
    count++;
    const found = readStack(s.name, s.json);
    if (found.length === 0) problems.push(`stack ${s.name} has no aws_instance or aws_launch_template`);
    for (const h of found) each(h);
  }
  if (count === 0) problems.unshift('no stacks found');
  return problems;
}

/** Every host of every stack, in the order the report lists them. */
export function planFleet(stacks: Iterable<StackInput>): FleetPlan {
  const hosts: HostArtefact[] = [];
  const problems = planStacks(stacks, (h) => hosts.push(h));
  return { hosts, problems };
}

/** Check every host of every stack, keeping each host's whole check (fleet.ts keeps verdicts only). */
export function checkStacks(stacks: readonly StackInput[]): CheckReport {
  const plan = planFleet(stacks);
  return { hosts: plan.hosts.map((h) => checkHost(h)), problems: plan.problems };
}
