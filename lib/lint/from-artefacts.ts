/**
 * A LintSubject from the synthesized artefacts (used by `twinwall report`): the network wall is
 * every security-group rule the checker's reader found for the host (all resource kinds, rules
 * twinwall did not write included); the host wall is the checker's exact model of the tables in
 * the user-data. Provenance comes back from the rule descriptions; suppressions from the
 * `twinwall:lint:*` tags on the host's groups.
 */
import { FAMILIES, Family, familyBits } from '../address';
import { AWS_LINK_LOCAL } from '../peer';
import { HostCheck, HostModels } from '../check/compare';
import { IntervalSet, Box, Region } from '../check/space';
import { parseCidrLenient } from '../check/addresses';
import { SgRule } from '../check/terraform';
import { IptDocument } from '../check/iptables-parse';
import { HostWallSource } from '../check/user-data';
import { LintGroup, LintHostWall, LintPeer, LintSgRule, LintSubject, MetadataReach, Suppression, TableState } from './model';
import { provenanceFromDescription } from '../provenance';
import { suppressionsFromTags } from './suppressions';
import { PROTO, protocolName } from '../port';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A rule as the reader found it, in lint terms; undefined when its peer could not be read. */
export function lintRuleFromArtefact(rule: SgRule): LintSgRule | undefined {
  const peer = rule.peer;
  if (peer === undefined) return undefined;
  let lintPeer: LintPeer;
  let quotaWeight: Record<Family, number> | undefined;
  if (peer.kind === 'cidr') {
    const prefix = Number(peer.text.slice(peer.text.indexOf('/') + 1));
    lintPeer = { kind: 'cidr', cidr: peer.text, family: peer.family, prefix };
  } else {
    lintPeer = { kind: peer.kind, id: peer.ref };
    if (peer.kind === 'prefixList' && peer.cidrs !== undefined) {
      quotaWeight = { 4: Math.max(1, peer.cidrs.filter((c) => c.family === 4).length), 6: Math.max(1, peer.cidrs.filter((c) => c.family === 6).length) };
    }
  }
  const protocol = rule.protocol === 'all' ? 'all' : (protocolName(rule.protocol) ?? String(rule.protocol));
  const ports = protocol === 'tcp' || protocol === 'udp' ? { ...(rule.fromPort !== undefined ? { fromPort: rule.fromPort } : {}), ...(rule.toPort !== undefined ? { toPort: rule.toPort } : {}) } : {};
  return {
    source: rule.address,
    direction: rule.direction,
    protocol,
    ...ports,
    peer: lintPeer,
    ...(rule.description !== undefined ? { description: rule.description } : {}),
    because: provenanceFromDescription(rule.description),
    ...(quotaWeight !== undefined ? { quotaWeight } : {}),
  };
}

/** The rules of each group the host carries, as lint groups (in the host's group order). */
export function lintGroupsFromArtefact(groups: readonly string[], rules: readonly SgRule[]): LintGroup[] {
  return groups.map((g) => ({ name: g, rules: rules.filter((r) => r.group === g).map(lintRuleFromArtefact).filter((r): r is LintSgRule => r !== undefined) }));
}

function resourceOf(tf: Json, address: string): Json {
  const dot = address.indexOf('.');
  return tf?.resource?.[address.slice(0, dot)]?.[address.slice(dot + 1)];
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? value : value !== undefined && value !== null ? [value] : [];
}

function positive(value: unknown): boolean {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && n > 0;
}

/** Why we know the host (an aws_instance or aws_launch_template) has IPv6, if we do. */
export function ipv6Evidence(tf: Json, address: string): string | undefined {
  const r = resourceOf(tf, address);
  if (r === undefined || r === null) return undefined;
  if (positive(r.ipv6_address_count)) return `ipv6_address_count = ${r.ipv6_address_count} on ${address}`;
  if (list(r.ipv6_addresses).length > 0) return `ipv6_addresses on ${address}`;
  if (r.enable_primary_ipv6 === true) return `enable_primary_ipv6 on ${address}`;
  for (const ni of list(r.network_interfaces)) {
    if (positive(ni?.ipv6_address_count) || list(ni?.ipv6_addresses).length > 0 || positive(ni?.ipv6_prefix_count) || ni?.primary_ipv6 === true || ni?.primary_ipv6 === 'true') {
      return `an IPv6 address on a network interface of ${address}`;
    }
  }
  const subnetRef = typeof r.subnet_id === 'string' ? /^\$\{aws_subnet\.([A-Za-z0-9_-]+)\.id\}$/.exec(r.subnet_id) : null;
  const subnet = subnetRef !== null ? tf?.resource?.aws_subnet?.[subnetRef[1]] : undefined;
  if (subnet?.assign_ipv6_address_on_creation === true || subnet?.ipv6_native === true) return `its subnet aws_subnet.${subnetRef?.[1]} assigns IPv6 addresses`;
  return undefined;
}

/** Whether the instance metadata endpoint is on (AWS's default) for the host. */
export function metadataEndpoint(tf: Json, address: string): 'enabled' | 'disabled' {
  const r = resourceOf(tf, address);
  const opts = list(r?.metadata_options)[0];
  return opts?.http_endpoint === 'disabled' ? 'disabled' : 'enabled';
}

/** The suppressions recorded on the host's groups (tags `twinwall:lint:TWLnnn`). */
export function suppressionsOfGroups(tf: Json, groups: readonly string[]): Suppression[] {
  const byId = new Map<string, Suppression>();
  for (const g of groups) {
    const r = g.startsWith('aws_security_group.') ? resourceOf(tf, g) : undefined;
    for (const s of suppressionsFromTags(r?.tags)) if (!byId.has(s.id)) byId.set(s.id, s);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const AUDIT_LOG = /(?:--log-prefix|log prefix)\s+"twinwall [a-z]+ audit/;

/** What one family's table does, from the checker's model of it. */
export function tableState(wall: HostWallSource, documents: Partial<Record<Family, IptDocument>>, models: HostModels, family: Family): TableState {
  const t = wall.tables[family];
  if (t === undefined) return 'absent';
  const doc = documents[family];
  if (doc === undefined || doc.problems.length > 0) return 'unknown';
  if (AUDIT_LOG.test(t.text)) return 'audit';
  const directions = [models.host.ingress[family], models.host.egress[family]];
  if (directions.some((m) => m.undecidable.length > 0)) return 'unknown';
  return directions.every((m) => m.dropped.length === 0) ? 'accept-all' : 'enforcing';
}

/** Who may open tcp/80 to the metadata service, from the host model's egress (both families). */
export function metadataReach(models: HostModels): MetadataReach {
  const verdicts: MetadataReach[] = FAMILIES.map((family) => {
    const m = models.host.egress[family];
    const bits = familyBits(family);
    const probe = Box.where(bits, {
      proto: IntervalSet.of(PROTO.tcp),
      point: IntervalSet.of(80),
      remote: parseCidrLenient(AWS_LINK_LOCAL.instanceMetadata[family]).set,
      kind: IntervalSet.of(0),
    });
    const space = m.universe.intersectBox(probe);
    if (space.isEmpty) return 'none';
    if (m.undecidable.some((u) => u.box.intersect(probe) !== undefined)) return 'unknown';
    const admitted = Region.of(m.admitted.map((a) => a.box)).intersectBox(probe);
    if (admitted.isEmpty) return 'none';
    if (space.subtract(admitted).isEmpty) return 'all-users';
    const uids = admitted.boxes.reduce((s, b) => s.union(b.get('uid')), IntervalSet.EMPTY);
    return uids.equals(IntervalSet.of(0)) ? 'root-only' : 'some-users';
  });
  const order: MetadataReach[] = ['all-users', 'some-users', 'unknown', 'root-only', 'none'];
  return order.find((r) => verdicts.includes(r)) ?? 'none';
}

/** The host wall of a checked host, in lint terms. */
export function hostWallOfCheck(check: HostCheck): LintHostWall {
  return {
    tables: { 4: tableState(check.wall, check.documents, check.models, 4), 6: tableState(check.wall, check.documents, check.models, 6) },
    metadata: metadataReach(check.models),
  };
}

/** The lint subject of one host the checker read from a stack's JSON (`tf`). */
export function subjectFromArtefacts(check: HostCheck, tf: Json): LintSubject {
  const host = check.host;
  const ipv6 = ipv6Evidence(tf, host.address);
  return {
    stack: host.stack,
    host: host.name,
    location: host.address,
    groups: lintGroupsFromArtefact(host.groups, host.rules),
    hostWall: hostWallOfCheck(check),
    ...(ipv6 !== undefined ? { ipv6 } : {}),
    metadataEndpoint: metadataEndpoint(tf, host.address),
    suppressions: suppressionsOfGroups(tf, host.groups),
  };
}
