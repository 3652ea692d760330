/**
 * Read hosts and their network walls out of synthesized Terraform JSON (cdk.tf.json). Pure: the
 * parsed JSON in, plain data out.
 *
 * Hosts are `aws_instance` and `aws_launch_template` resources. Their security groups come from
 * vpc_security_group_ids / security_groups / security_group_names, network interfaces
 * (aws_network_interface, network_interfaces blocks, aws_network_interface_sg_attachment), with
 * `${aws_security_group.NAME.id}` references resolved within the same JSON. Rules come from
 * aws_vpc_security_group_ingress_rule / _egress_rule, aws_security_group_rule and inline
 * ingress/egress blocks of aws_security_group. Whatever cannot be read (a Terraform expression
 * where a literal is needed, a group defined elsewhere, a dynamic block) is kept as a problem:
 * undecidable. The JSON passes through `terraformJson` (terraform-shape.ts) first, so every value
 * read here has the JSON type Terraform gives it; a document of the wrong shape is TW291.
 */
import { Family } from '../address';
import { DIRECTIONS, Direction } from '../flow';
import { parseCidrLenient } from './addresses';
import { HOST_WALL_TAG, HostWallRecord, readHostCidrsTags, readHostWallTags } from './record';
import { isTerraformExpression } from './user-data';
import { IntervalSet } from './space';
import { terraformJson } from './terraform-shape';
import { PROTO } from '../port';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface CidrPeer {
  readonly kind: 'cidr';
  readonly family: Family;
  readonly set: IntervalSet;
  readonly text: string;
}

export interface ReferencePeer {
  readonly kind: 'securityGroup' | 'prefixList';
  /** What the rule names: "aws_security_group.app_SecurityGroup_1234", "sg-0abc…", "pl-…". */
  readonly ref: string;
  /** The host-side CIDRs, when recorded or known; undefined → undecidable. */
  readonly cidrs?: readonly CidrPeer[];
  /** Where the CIDRs came from ("tag twinwall:host-cidrs on …", "entries of aws_ec2_managed_prefix_list.x"). */
  readonly source?: string;
}

export type SgPeer = CidrPeer | ReferencePeer;

/** One rule of the network wall, one peer. */
export interface SgRule {
  /** Terraform address of the resource (inline blocks: "aws_security_group.x ingress[0]"). */
  readonly address: string;
  readonly description?: string;
  /** Key of the group it belongs to. */
  readonly group: string;
  readonly direction: Direction;
  /** IP protocol number, or 'all' for -1. */
  readonly protocol: number | 'all';
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly peer?: SgPeer;
  /** Why this rule cannot be read (then it is undecidable). */
  readonly problem?: string;
}

export interface HostArtefact {
  readonly stack: string;
  /** The twinwall:host tag, else the Name tag, else the resource name. A label, not an identity. */
  readonly name: string;
  /** "aws_instance.sample_Instance_F92DAE85": with the stack, the host's identity (Terraform's own). */
  readonly address: string;
  /** The construct path cdktf recorded for the resource ("production/sample/Instance"), when present. */
  readonly path?: string;
  /**
   * The CIDRs of the host's VPC, when the stack defines it (an aws_vpc with literal CIDRs that the
   * host's groups or subnet reference); undefined when the VPC is not in these artefacts.
   */
  readonly vpc?: { readonly ref: string; readonly cidrs: readonly CidrPeer[] };
  readonly type: 'aws_instance' | 'aws_launch_template';
  /** Keys of the attached groups (resource addresses, or literal ids). */
  readonly groups: readonly string[];
  readonly rules: readonly SgRule[];
  readonly userData?: { readonly base64?: string; readonly plain?: string };
  /** Network-wall facts that make the whole wall undecidable. */
  readonly problems: readonly string[];
  /**
   * The host-wall record (tag twinwall:host-wall on an attached group): the options the
   * host-only part of the host wall follows; undefined when no group carries one.
   */
  readonly wallRecord?: HostWallRecord & { readonly source: string };
  readonly sourceDestCheck?: boolean;
}

const PROTOCOLS: Record<string, number | 'all'> = { '-1': 'all', all: 'all', ...PROTO };

export function parseProtocol(value: unknown): number | 'all' {
  const t = String(value).toLowerCase();
  if (PROTOCOLS[t] !== undefined) return PROTOCOLS[t];
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return Number(t);
  throw new Error(`protocol ${JSON.stringify(value)} is not readable`);
}

function port(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  throw new Error(`${what} ${JSON.stringify(value)} is not a literal number`);
}

/** `${aws_security_group.NAME.id}` → "aws_security_group.NAME"; "sg-123" → "sg-123"; other expressions → undefined. */
export function resolveRef(value: unknown, type: string, attrs: readonly string[] = ['id']): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}$/.exec(value);
  if (m) return m[1] === type && attrs.includes(m[3]) ? `${m[1]}.${m[2]}` : undefined;
  return isTerraformExpression(value) ? undefined : value;
}

function cidrPeer(text: unknown, family: Family | undefined): CidrPeer {
  if (typeof text !== 'string' || isTerraformExpression(text)) throw new Error(`CIDR ${JSON.stringify(text)} is a Terraform expression, not a literal`);
  const c = parseCidrLenient(text);
  if (family !== undefined && c.family !== family) throw new Error(`CIDR ${text} is not IPv${family}`);
  return { kind: 'cidr', family: c.family, set: c.set, text: c.text };
}

function stringList(value: unknown): { list: string[]; opaque: boolean } {
  if (value === undefined || value === null) return { list: [], opaque: false };
  if (Array.isArray(value)) return { list: value.map(String), opaque: false };
  return { list: [], opaque: true }; // a single expression standing for a whole list
}

interface Context {
  readonly tf: Json;
  readonly stack: string;
}

function resources(tf: Json, type: string): [string, Json][] {
  const r = tf?.resource?.[type];
  return r !== null && typeof r === 'object' ? Object.entries(r as Record<string, Json>) : [];
}

/** The resource `type`.`name`, as `resources` lists it (an own enumerable key), found without a scan. */
function resourceNamed(tf: Json, type: string, name: string): Json | undefined {
  const r = tf?.resource?.[type];
  return r !== null && typeof r === 'object' && Object.prototype.propertyIsEnumerable.call(r, name) ? r[name] : undefined;
}

/** Host-side CIDRs for a reference to `ref`: the rule's tag, else the referenced group's tag. */
function referenceCidrs(ctx: Context, ref: string, ruleTags: unknown, ruleAddress: string): { cidrs?: CidrPeer[]; source?: string; problem?: string } {
  const fromTags = (tags: unknown, where: string) => {
    const list = readHostCidrsTags(tags);
    if (list === undefined) return undefined;
    try {
      return { cidrs: list.map((c) => cidrPeer(c, undefined)), source: `tag twinwall:host-cidrs on ${where}` };
    } catch (e) {
      return { problem: `tag twinwall:host-cidrs on ${where}: ${(e as Error).message}` };
    }
  };
  const own = fromTags(ruleTags, ruleAddress);
  if (own !== undefined) return own;
  if (ref.startsWith('aws_security_group.')) {
    const g = ctx.tf?.resource?.aws_security_group?.[ref.slice('aws_security_group.'.length)];
    const viaGroup = fromTags(g?.tags, ref);
    if (viaGroup !== undefined) return viaGroup;
  }
  if (ref.startsWith('aws_ec2_managed_prefix_list.')) {
    const pl = ctx.tf?.resource?.aws_ec2_managed_prefix_list?.[ref.slice('aws_ec2_managed_prefix_list.'.length)];
    const entries = Array.isArray(pl?.entry) ? pl.entry : pl?.entry !== undefined ? [pl.entry] : undefined;
    if (entries !== undefined) {
      try {
        return { cidrs: entries.map((e: Json) => cidrPeer(e?.cidr, undefined)), source: `entries of ${ref}` };
      } catch (e) {
        return { problem: `${ref}: ${(e as Error).message}` };
      }
    }
  }
  return { problem: `no host-side CIDRs are recorded for ${ref} (tag twinwall:host-cidrs on ${ruleAddress}), so the host wall cannot be compared with it` };
}

function groupRef(value: unknown): string | undefined {
  return resolveRef(value, 'aws_security_group', ['id', 'name']);
}

function prefixListRef(value: unknown): string | undefined {
  return resolveRef(value, 'aws_ec2_managed_prefix_list', ['id']);
}

interface RawRule {
  address: string;
  description?: string;
  group?: string;
  direction: Direction;
  protocol: unknown;
  fromPort: unknown;
  toPort: unknown;
  peers: { kind: 'cidr4' | 'cidr6' | 'sg' | 'pl'; value: unknown }[];
  opaque?: string;
  tags?: unknown;
}

function expand(ctx: Context, raw: RawRule): SgRule[] {
  const base = { address: raw.address, ...(raw.description !== undefined ? { description: String(raw.description) } : {}), group: raw.group ?? '?', direction: raw.direction };
  let protocol: number | 'all';
  let fromPort: number | undefined;
  let toPort: number | undefined;
  try {
    if (raw.opaque !== undefined) throw new Error(raw.opaque);
    protocol = parseProtocol(raw.protocol);
    fromPort = port(raw.fromPort, 'from_port');
    toPort = port(raw.toPort, 'to_port');
  } catch (e) {
    return [{ ...base, protocol: 'all', problem: (e as Error).message }];
  }
  const common = { ...base, protocol, ...(fromPort !== undefined ? { fromPort } : {}), ...(toPort !== undefined ? { toPort } : {}) };
  if (raw.peers.length === 0) return [{ ...common, problem: 'the rule names no peer (no CIDR, group or prefix list)' }];
  return raw.peers.map((p): SgRule => {
    try {
      if (p.kind === 'cidr4' || p.kind === 'cidr6') return { ...common, peer: cidrPeer(p.value, p.kind === 'cidr4' ? 4 : 6) };
      const ref = p.kind === 'sg' ? groupRef(p.value) : prefixListRef(p.value);
      if (ref === undefined) return { ...common, problem: `the referenced ${p.kind === 'sg' ? 'security group' : 'prefix list'} ${JSON.stringify(p.value)} is a Terraform expression twinwall cannot resolve` };
      const r = referenceCidrs(ctx, ref, raw.tags, raw.address);
      const peer: ReferencePeer = { kind: p.kind === 'sg' ? 'securityGroup' : 'prefixList', ref, ...(r.cidrs !== undefined ? { cidrs: r.cidrs } : {}), ...(r.source !== undefined ? { source: r.source } : {}) };
      return { ...common, peer, ...(r.problem !== undefined ? { problem: r.problem } : {}) };
    } catch (e) {
      return { ...common, problem: (e as Error).message };
    }
  });
}

function listPeers(kind: 'cidr4' | 'cidr6' | 'sg' | 'pl', value: unknown, what: string, opaque: string[]): { kind: typeof kind; value: unknown }[] {
  const { list, opaque: isOpaque } = stringList(value);
  if (isOpaque) opaque.push(`${what} is a Terraform expression, not a list`);
  return list.map((v) => ({ kind, value: v }));
}

/** Every rule in the JSON, by group key. */
function collectRules(ctx: Context): Map<string, SgRule[]> {
  const raws: RawRule[] = [];
  for (const [direction, type] of [
    ['ingress', 'aws_vpc_security_group_ingress_rule'],
    ['egress', 'aws_vpc_security_group_egress_rule'],
  ] as const) {
    for (const [name, r] of resources(ctx.tf, type)) {
      const peers: RawRule['peers'] = [];
      if (r.cidr_ipv4 !== undefined) peers.push({ kind: 'cidr4', value: r.cidr_ipv4 });
      if (r.cidr_ipv6 !== undefined) peers.push({ kind: 'cidr6', value: r.cidr_ipv6 });
      if (r.referenced_security_group_id !== undefined) peers.push({ kind: 'sg', value: r.referenced_security_group_id });
      if (r.prefix_list_id !== undefined) peers.push({ kind: 'pl', value: r.prefix_list_id });
      raws.push({ address: `${type}.${name}`, description: r.description, group: groupRef(r.security_group_id), direction, protocol: r.ip_protocol, fromPort: r.from_port, toPort: r.to_port, peers, tags: r.tags, ...(r.count !== undefined || r.for_each !== undefined ? { opaque: 'the rule uses count/for_each' } : {}) });
    }
  }
  for (const [name, r] of resources(ctx.tf, 'aws_security_group_rule')) {
    const opaque: string[] = [];
    const peers = [
      ...listPeers('cidr4', r.cidr_blocks, 'cidr_blocks', opaque),
      ...listPeers('cidr6', r.ipv6_cidr_blocks, 'ipv6_cidr_blocks', opaque),
      ...listPeers('pl', r.prefix_list_ids, 'prefix_list_ids', opaque),
      ...(r.source_security_group_id !== undefined ? [{ kind: 'sg' as const, value: r.source_security_group_id }] : []),
      ...(r.self === true ? [{ kind: 'sg' as const, value: r.security_group_id }] : []),
    ];
    if (r.count !== undefined || r.for_each !== undefined) opaque.push('the rule uses count/for_each');
    if (r.type !== 'ingress' && r.type !== 'egress') opaque.push(`type ${JSON.stringify(r.type)} is neither "ingress" nor "egress"`);
    const direction: Direction = r.type === 'egress' ? 'egress' : 'ingress';
    raws.push({ address: `aws_security_group_rule.${name}`, description: r.description, group: groupRef(r.security_group_id), direction, protocol: r.protocol, fromPort: r.from_port, toPort: r.to_port, peers, ...(opaque.length > 0 ? { opaque: opaque.join('; ') } : {}) });
  }
  for (const [name, g] of resources(ctx.tf, 'aws_security_group')) {
    const key = `aws_security_group.${name}`;
    const hidden = [...(g.count !== undefined || g.for_each !== undefined ? ['count/for_each'] : []), ...(g.dynamic !== undefined ? ['dynamic blocks'] : [])];
    if (hidden.length > 0) {
      for (const direction of DIRECTIONS) raws.push({ address: key, group: key, direction, protocol: '-1', fromPort: 0, toPort: 0, peers: [], opaque: `the group uses ${hidden.join(' and ')}, whose rules are known only at plan time` });
    }
    for (const direction of DIRECTIONS) {
      const blocks = g[direction];
      if (blocks === undefined || blocks === null) continue;
      if (!Array.isArray(blocks)) {
        raws.push({ address: `${key} ${direction}`, group: key, direction, protocol: '-1', fromPort: 0, toPort: 0, peers: [], opaque: `inline ${direction} is a Terraform expression` });
        continue;
      }
      blocks.forEach((b: Json, i: number) => {
        const opaque: string[] = [];
        const peers = [
          ...listPeers('cidr4', b.cidr_blocks, 'cidr_blocks', opaque),
          ...listPeers('cidr6', b.ipv6_cidr_blocks, 'ipv6_cidr_blocks', opaque),
          ...listPeers('pl', b.prefix_list_ids, 'prefix_list_ids', opaque),
          ...listPeers('sg', b.security_groups, 'security_groups', opaque),
          ...(b.self === true ? [{ kind: 'sg' as const, value: `\${${key}.id}` }] : []),
        ];
        raws.push({ address: `${key} ${direction}[${i}]`, description: b.description, group: key, direction, protocol: b.protocol, fromPort: b.from_port, toPort: b.to_port, peers, ...(opaque.length > 0 ? { opaque: opaque.join('; ') } : {}) });
      });
    }
  }
  const byGroup = new Map<string, SgRule[]>();
  for (const raw of raws) {
    const rules = expand(ctx, raw);
    const key = raw.group ?? '?';
    const list = byGroup.get(key);
    if (list === undefined) byGroup.set(key, rules);
    else list.push(...rules);
  }
  return byGroup;
}

function interfaceGroups(ctx: Context, eniRef: string | undefined, problems: string[]): string[] {
  if (eniRef === undefined) return [];
  const name = eniRef.startsWith('aws_network_interface.') ? eniRef.slice('aws_network_interface.'.length) : undefined;
  const eni = name !== undefined ? ctx.tf?.resource?.aws_network_interface?.[name] : undefined;
  const out: string[] = [];
  if (eni !== undefined) {
    const { list, opaque } = stringList(eni.security_groups);
    if (opaque) problems.push(`the security groups of ${eniRef} are a Terraform expression`);
    out.push(...list.map((v) => groupRef(v) ?? `?${v}`));
  } else problems.push(`network interface ${eniRef} is not defined in this stack, so its security groups are unknown`);
  for (const [, att] of resources(ctx.tf, 'aws_network_interface_sg_attachment')) {
    if (resolveRef(att.network_interface_id, 'aws_network_interface') === eniRef) out.push(groupRef(att.security_group_id) ?? `?${att.security_group_id}`);
  }
  return out;
}

/**
 * The host's label: the twinwall:host tag of the instance (or template), else that of its first
 * twinwall group (an instance of the user's own, attached with `FilteredHost.attachTo`, is named
 * by its host), else the Name tag, else the resource name.
 */
function hostName(tags: Json, groupHost: string | undefined, fallback: string): string {
  const t = tags !== null && typeof tags === 'object' ? tags : {};
  if (typeof t['twinwall:host'] === 'string') return t['twinwall:host'];
  if (groupHost !== undefined) return groupHost;
  return typeof t.Name === 'string' && !isTerraformExpression(t.Name) ? t.Name : fallback;
}

/** The twinwall:host tag of the first of `groups` that carries one. */
function groupHostName(tf: Json, groups: readonly string[]): string | undefined {
  for (const g of groups) {
    if (!g.startsWith('aws_security_group.')) continue;
    const host = tf?.resource?.aws_security_group?.[g.slice('aws_security_group.'.length)]?.tags?.['twinwall:host'];
    if (typeof host === 'string') return host;
  }
  return undefined;
}

function blocks(value: unknown): Json[] {
  return Array.isArray(value) ? value : value !== undefined && value !== null ? [value] : [];
}

/** The CIDRs of an aws_vpc of this stack (and its IPv4 associations); undefined unless all are literal. */
function vpcCidrs(ctx: Context, ref: string): CidrPeer[] | undefined {
  const name = ref.slice('aws_vpc.'.length);
  const vpc = resourceNamed(ctx.tf, 'aws_vpc', name);
  if (vpc === undefined) return undefined;
  const texts: unknown[] = [vpc.cidr_block, ...(vpc.ipv6_cidr_block !== undefined ? [vpc.ipv6_cidr_block] : [])];
  for (const [, a] of resources(ctx.tf, 'aws_vpc_ipv4_cidr_block_association')) if (resolveRef(a.vpc_id, 'aws_vpc') === ref) texts.push(a.cidr_block);
  try {
    return texts.map((t) => cidrPeer(t, undefined));
  } catch {
    return undefined; // an expression (IPAM, say): the VPC's extent is not in the artefacts
  }
}

/** The host's VPC, when its groups (or its subnet) name one aws_vpc of this stack with literal CIDRs. */
function hostVpc(ctx: Context, groups: readonly string[], subnetId: unknown): HostArtefact['vpc'] {
  const refs = new Set<string | undefined>();
  for (const g of groups) {
    const body = g.startsWith('aws_security_group.') ? resourceNamed(ctx.tf, 'aws_security_group', g.slice('aws_security_group.'.length)) : undefined;
    refs.add(body === undefined ? undefined : resolveRef(body.vpc_id, 'aws_vpc'));
  }
  const subnet = resolveRef(subnetId, 'aws_subnet');
  if (subnet !== undefined && subnet.startsWith('aws_subnet.')) {
    const body = resourceNamed(ctx.tf, 'aws_subnet', subnet.slice('aws_subnet.'.length));
    if (body !== undefined) refs.add(resolveRef(body.vpc_id, 'aws_vpc'));
  }
  if (refs.size !== 1) return undefined;
  const ref = [...refs][0];
  if (ref === undefined || !ref.startsWith('aws_vpc.')) return undefined;
  const cidrs = vpcCidrs(ctx, ref);
  return cidrs === undefined ? undefined : { ref, cidrs };
}

/**
 * Every name a host answers to: "name", "stack/name", its resource address, "stack/address" and,
 * for a host attached to the user's own instance, its construct path (every command that takes a
 * host, e.g. `--host`, matches with these).
 */
export function hostNames(host: Pick<HostArtefact, 'stack' | 'name' | 'address' | 'path'>): string[] {
  return [host.name, `${host.stack}/${host.name}`, host.address, `${host.stack}/${host.address}`, ...(host.path !== undefined ? [host.path] : [])];
}

/** A host is named by any of `hostNames`. */
export function namesHost(host: Pick<HostArtefact, 'stack' | 'name' | 'address' | 'path'>, name: string): boolean {
  return hostNames(host).includes(name);
}

/** What one stack's artefacts hold: its hosts, and the rules of every security group in it. */
export interface StackArtefacts {
  readonly hosts: HostArtefact[];
  /** Every rule on each group (by resource address), whatever resource kind or inline block wrote it. */
  readonly groupRules: ReadonlyMap<string, readonly SgRule[]>;
}

/** The hosts of one stack (sorted by name, then address). */
export function readStack(stack: string, input: unknown): HostArtefact[] {
  return readStackArtefacts(stack, input).hosts;
}

/** The hosts of one stack and the rules of each of its groups (lint reads a group's rules without a host). */
export function readStackArtefacts(stack: string, input: unknown): StackArtefacts {
  const tf: Json = terraformJson(input);
  const ctx: Context = { tf, stack };
  const rulesByGroup = collectRules(ctx);
  const definedGroups = new Set(resources(tf, 'aws_security_group').map(([n]) => `aws_security_group.${n}`));
  const hosts: HostArtefact[] = [];
  const make = (type: 'aws_instance' | 'aws_launch_template', name: string, r: Json, groupsRaw: string[], problems: string[], userData: HostArtefact['userData']): void => {
    const groups = [...new Set(groupsRaw)];
    if (groups.length === 0) problems.push('no security group is attached, so the VPC default group applies, and its rules are not in these artefacts');
    const rules: SgRule[] = [];
    for (const g of groups) {
      if (g.startsWith('?')) {
        problems.push(`security group ${JSON.stringify(g.slice(1))} is a Terraform expression twinwall cannot resolve`);
        continue;
      }
      if (!definedGroups.has(g)) problems.push(`security group ${g} is not defined in this stack, so its rules are unknown`);
      rules.push(...(rulesByGroup.get(g) ?? []));
    }
    if (r.count !== undefined || r.for_each !== undefined) problems.push(`${type}.${name} uses count/for_each: its instances are known only at plan time`);
    if (r.dynamic !== undefined) problems.push(`${type}.${name} uses dynamic blocks, whose network interfaces and groups are known only at plan time`);
    const path = r['//']?.metadata?.path;
    const vpc = hostVpc(ctx, groups, r.subnet_id);
    // The record sits on the host's first group; every group that carries one must agree.
    const records = groups
      .filter((g) => g.startsWith('aws_security_group.'))
      .flatMap((g) => {
        const rec = readHostWallTags(tf?.resource?.aws_security_group?.[g.slice('aws_security_group.'.length)]?.tags);
        return rec === undefined ? [] : [{ ...rec, source: `tag ${HOST_WALL_TAG} on ${g}` }];
      });
    const texts = new Set(records.map((rec) => ('options' in rec ? JSON.stringify(rec.options) : rec.problem)));
    const wallRecord: HostArtefact['wallRecord'] =
      records.length === 0 ? undefined : texts.size > 1 ? { problem: `the groups' ${HOST_WALL_TAG} tags disagree (${records.map((rec) => rec.source).join(', ')})`, source: records.map((rec) => rec.source).join(', ') } : records[0];
    hosts.push({
      stack,
      name: hostName(r.tags, groupHostName(tf, groups), name),
      address: `${type}.${name}`,
      ...(typeof path === 'string' ? { path } : {}),
      ...(vpc !== undefined ? { vpc } : {}),
      type,
      groups,
      rules,
      ...(userData !== undefined ? { userData } : {}),
      problems,
      ...(wallRecord !== undefined ? { wallRecord } : {}),
      ...(typeof r.source_dest_check === 'boolean' ? { sourceDestCheck: r.source_dest_check } : {}),
    });
  };
  for (const [name, r] of resources(tf, 'aws_instance')) {
    const problems: string[] = [];
    const groups: string[] = [];
    for (const attr of ['vpc_security_group_ids', 'security_groups']) {
      const { list, opaque } = stringList(r[attr]);
      if (opaque) problems.push(`${attr} is a Terraform expression, not a list`);
      groups.push(...list.map((v) => groupRef(v) ?? `?${v}`));
    }
    for (const ni of blocks(r.network_interface)) groups.push(...interfaceGroups(ctx, resolveRef(ni?.network_interface_id, 'aws_network_interface'), problems));
    if (r.launch_template !== undefined && r.user_data === undefined && r.user_data_base64 === undefined) {
      problems.push('the instance takes its user-data and perhaps groups from a launch template; check the template itself');
    }
    const userData = r.user_data_base64 !== undefined ? { base64: String(r.user_data_base64) } : r.user_data !== undefined ? { plain: String(r.user_data) } : undefined;
    make('aws_instance', name, r, groups, problems, userData);
  }
  for (const [name, r] of resources(tf, 'aws_launch_template')) {
    const problems: string[] = [];
    const groups: string[] = [];
    for (const attr of ['vpc_security_group_ids', 'security_group_names']) {
      const { list, opaque } = stringList(r[attr]);
      if (opaque) problems.push(`${attr} is a Terraform expression, not a list`);
      groups.push(...list.map((v) => groupRef(v) ?? `?${v}`));
    }
    for (const ni of blocks(r.network_interfaces)) {
      const { list, opaque } = stringList(ni?.security_groups);
      if (opaque) problems.push('network_interfaces.security_groups is a Terraform expression');
      groups.push(...list.map((v) => groupRef(v) ?? `?${v}`));
    }
    // A launch template's user_data is base64 by definition.
    make('aws_launch_template', name, r, groups, problems, r.user_data !== undefined ? { base64: String(r.user_data) } : undefined);
  }
  return { hosts: hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.address < b.address ? -1 : 1)), groupRules: rulesByGroup };
}
