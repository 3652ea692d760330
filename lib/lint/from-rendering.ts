/**
 * A LintSubject from a host's renderings (used at synth by the cdktf Aspect): the network wall
 * is the rendered security-group rule specs, each with the provenance the renderer put on it; the host wall is what the policy's options make of it. The adapter adds what only the
 * construct tree knows (hand-added rules on the host's group, the instances that use it).
 */
import { Cidr } from '../address';
import { HostRendering, SgRuleSpec } from '../render';
import { LintGroup, LintHostWall, LintPeer, LintSgRule, LintSubject, NO_HOST_WALL, Suppression } from './model';

export interface RenderingLintContext {
  readonly stack?: string;
  /** The construct path of the host. */
  readonly location: string;
  /**
   * The names of the host's security groups in messages (construct paths), one per group plan
   * of the rendering (index 0 first); missing names fall back to "<location>/SecurityGroupN".
   */
  readonly groupNames?: readonly string[];
  readonly suppressions?: readonly Suppression[];
  /** Rules on the host's groups that twinwall did not render (added by hand), by group index. */
  readonly extraRules?: ReadonlyMap<number, readonly LintSgRule[]>;
  /** Other groups attached to the host's instances, with their rules. */
  readonly extraGroups?: readonly LintGroup[];
  /** Evidence that the host has IPv6 ("ipv6_address_count = 1 on …/Instance"). */
  readonly ipv6?: string;
  /** An instance uses the group without the rendered user-data: it has no host wall. */
  readonly hostWallMissing?: boolean;
  readonly metadataEndpoint?: 'enabled' | 'disabled';
}

function specPeer(spec: SgRuleSpec): LintPeer {
  const cidr = spec.cidrIpv4 ?? spec.cidrIpv6;
  if (cidr !== undefined) {
    const c = Cidr.of(cidr);
    return { kind: 'cidr', cidr: c.text, family: c.family, prefix: c.prefix };
  }
  if (spec.referencedSecurityGroupId !== undefined) return { kind: 'securityGroup', id: spec.referencedSecurityGroupId };
  return { kind: 'prefixList', id: spec.prefixListId as string };
}

function specRule(spec: SgRuleSpec, groupName: string): LintSgRule {
  const ports = spec.ipProtocol === 'tcp' || spec.ipProtocol === 'udp' ? { fromPort: spec.fromPort, toPort: spec.toPort } : {};
  return {
    source: `${groupName}/${spec.id}`,
    direction: spec.direction,
    protocol: spec.ipProtocol === '-1' ? 'all' : spec.ipProtocol,
    ...ports,
    peer: specPeer(spec),
    description: spec.description,
    because: [...spec.because],
    // What AWS counts for it, as the renderer packed it (a prefix list: its maxEntries).
    quotaWeight: spec.quotaCost,
  };
}

/** The host wall as the policy's options render it. */
export function hostWallOfRendering(rendering: HostRendering): LintHostWall {
  const state = rendering.policy.options.audit ? 'audit' : 'enforcing';
  return { tables: { 4: state, 6: state }, metadata: rendering.policy.options.instanceMetadata };
}

/** The lint subject of one rendered host. */
export function subjectFromRendering(rendering: HostRendering, context: RenderingLintContext): LintSubject {
  const plans = rendering.securityGroups.groups;
  const groups: LintGroup[] = plans.map((plan) => {
    const name = context.groupNames?.[plan.index] ?? `${context.location}/SecurityGroup${plan.index === 0 ? '' : plan.index + 1}`;
    return { name, rules: [...plan.rules.map((s) => specRule(s, name)), ...(context.extraRules?.get(plan.index) ?? [])] };
  });
  return {
    ...(context.stack !== undefined ? { stack: context.stack } : {}),
    host: rendering.policy.name,
    location: context.location,
    groups: [...groups, ...(context.extraGroups ?? [])],
    hostWall: context.hostWallMissing === true ? NO_HOST_WALL : hostWallOfRendering(rendering),
    ...(context.ipv6 !== undefined ? { ipv6: context.ipv6 } : {}),
    metadataEndpoint: context.metadataEndpoint ?? 'enabled',
    suppressions: context.suppressions ?? [],
  };
}
