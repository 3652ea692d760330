/**
 * A host's renderings read as the checker reads synthesized artefacts, so that synth time (the
 * per-host table `npm run synth` prints, lib/report/summary.ts) judges a host with the same
 * models and the same verdict as `twinwall check` and `twinwall report`.
 *
 * The network wall is the rendered security-group rule specs, each read into the checker's rule
 * (`SgRule`: a reference compared through the host-side CIDRs the spec carries); the host wall is
 * the text the host ships (the iptables-restore tables and their sets, or the nftables file) and
 * its fallback; the host-wall record is the policy's options, through the same tag writer and
 * reader the construct and the checker use. Only the user-data's wrapping is not read (a
 * rendering's user-data is built from these same texts, and `twinwall check` reads it).
 */
import { FAMILIES, Family } from '../address';
import { PROTO } from '../port';
import { HostRendering, SgRuleSpec } from '../render';
import { NFT_FALLBACK_PATH, NFT_RULES_PATH } from '../render/nftables';
import { FALLBACK_PATHS, HostWallSource, RULES_PATHS } from './user-data';
import { parseCidrLenient } from './addresses';
import { ipsetScript, parseIpsets } from './ipset';
import { HOST_WALL_TAG, hostWallTags, readHostWallTags } from './record';
import { CidrPeer, HostArtefact, SgPeer, SgRule } from './terraform';

/** A rendered rule spec as the checker's rule, in the group `group`. */
export function ruleOfSpec(spec: SgRuleSpec, group: string): SgRule {
  const base = { address: spec.id, description: spec.description, group, direction: spec.direction };
  const protocol = spec.ipProtocol === '-1' ? ('all' as const) : PROTO[spec.ipProtocol];
  const ports = { ...(spec.fromPort !== undefined ? { fromPort: spec.fromPort } : {}), ...(spec.toPort !== undefined ? { toPort: spec.toPort } : {}) };
  const cidr = (text: string): CidrPeer => {
    const c = parseCidrLenient(text);
    return { kind: 'cidr', family: c.family, set: c.set, text: c.text };
  };
  const literal = spec.cidrIpv4 ?? spec.cidrIpv6;
  if (literal !== undefined) return { ...base, protocol, ...ports, peer: cidr(literal) };
  const kind = spec.referencedSecurityGroupId !== undefined ? ('securityGroup' as const) : ('prefixList' as const);
  const ref = (spec.referencedSecurityGroupId ?? spec.prefixListId) as string;
  if (spec.hostCidrs === undefined) {
    return { ...base, protocol, ...ports, peer: { kind, ref }, problem: `no host-side CIDRs are declared for ${ref}, so the host wall cannot be compared with it` };
  }
  const peer: SgPeer = { kind, ref, cidrs: spec.hostCidrs.map(cidr), source: 'the host-side CIDRs the policy declares' };
  return { ...base, protocol, ...ports, peer };
}

/** The host wall a rendering ships, as the checker's reader of user-data would find it. */
export function wallOfRendering(rendering: HostRendering): HostWallSource {
  const nft = rendering.nftables;
  if (nft !== undefined) {
    const fallback = rendering.nftablesFallback?.text;
    const one = { path: NFT_RULES_PATH, text: nft.text };
    const fallbackFile = fallback === undefined ? undefined : { path: NFT_FALLBACK_PATH, text: fallback };
    return {
      gzipped: false,
      tables: { 4: one, 6: one },
      firstBoot: { 4: nft.text, 6: nft.text },
      fallback: fallbackFile === undefined ? {} : { 4: fallbackFile, 6: fallbackFile },
      nftables: { path: NFT_RULES_PATH, text: nft.text, ...(fallback !== undefined ? { fallback } : {}) },
      ipsets: new Map(),
      ipsetScript: '',
      problems: [],
    };
  }
  const ipt = rendering.iptables;
  const texts: Record<Family, string> = { 4: ipt.v4, 6: ipt.v6 };
  const sets = ipt.ipsets === undefined ? [] : [ipt.ipsets];
  const tables: HostWallSource['tables'] = {};
  const fallback: HostWallSource['fallback'] = {};
  for (const family of FAMILIES) {
    tables[family] = { path: RULES_PATHS[family][0], text: texts[family] };
    const fb = rendering.fallback?.[family === 4 ? 'v4' : 'v6'];
    if (fb !== undefined) fallback[family] = { path: FALLBACK_PATHS[family], text: fb };
  }
  return {
    gzipped: false,
    tables,
    firstBoot: { 4: ipt.v4, 6: ipt.v6 },
    fallback,
    ipsets: parseIpsets(sets),
    ipsetScript: ipsetScript(sets),
    problems: [],
  };
}

/** One rendered host as the checker's artefact, with the host wall it ships (`checkHost(host, wall)`). */
export function artefactOfRendering(rendering: HostRendering, stack = ''): { host: HostArtefact; wall: HostWallSource } {
  const name = (index: number) => `SecurityGroup${index === 0 ? '' : index + 1}`;
  const groupOf = new Map(rendering.securityGroups.groups.flatMap((g) => g.rules.map((spec) => [spec, name(g.index)] as const)));
  const groups = rendering.securityGroups.groups.map((g) => name(g.index));
  const rules = rendering.securityGroups.rules.map((spec) => ruleOfSpec(spec, groupOf.get(spec) ?? name(0)));
  const record = readHostWallTags(hostWallTags(rendering.policy.options, rendering.hostFirewall));
  const host: HostArtefact = {
    stack,
    name: rendering.policy.name,
    address: rendering.policy.name,
    type: 'aws_instance',
    groups,
    rules,
    problems: [],
    ...(record !== undefined ? { wallRecord: { ...record, source: `tag ${HOST_WALL_TAG} the host's policy records` } } : {}),
  };
  return { host, wall: wallOfRendering(rendering) };
}
