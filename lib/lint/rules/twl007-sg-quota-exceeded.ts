/** TWL007: more rules or groups than AWS allows. */
import { FAMILIES, Family } from '../../address';
import { DIRECTIONS, Direction } from '../../flow';
import { SECURITY_GROUPS_PER_ENI, SG_RULES_PER_DIRECTION_PER_FAMILY, SG_RULES_PER_ENI } from '../../render/security-groups';
import { LintGroup, LintSgRule } from '../model';
import { LintDraft, LintRule } from '../rule';

function weight(rule: LintSgRule): Record<Family, number> {
  if (rule.quotaWeight !== undefined) return { ...rule.quotaWeight };
  if (rule.peer.kind === 'cidr') return rule.peer.family === 4 ? { 4: 1, 6: 0 } : { 4: 0, 6: 1 };
  return { 4: 1, 6: 1 };
}

function groupCounts(group: LintGroup): Record<Direction, Record<Family, number>> {
  const counts: Record<Direction, Record<Family, number>> = { ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 0 } };
  for (const r of group.rules) {
    const w = weight(r);
    counts[r.direction][4] += w[4];
    counts[r.direction][6] += w[6];
  }
  return counts;
}

export const TWL007: LintRule = {
  id: 'TWL007',
  name: 'sg-quota-exceeded',
  level: 'error',
  title: `more than ${SG_RULES_PER_DIRECTION_PER_FAMILY} rules per direction per address family in a group, more than ${SECURITY_GROUPS_PER_ENI} groups or ${SG_RULES_PER_ENI.toLocaleString('en-US')} rules on a network interface`,
  fix: `merge peers into fewer, wider CIDRs or a managed prefix list, or split the roles over more host policies; AWS allows ${SG_RULES_PER_DIRECTION_PER_FAMILY} rules per direction per address family per group, ${SECURITY_GROUPS_PER_ENI} groups and ${SG_RULES_PER_ENI.toLocaleString('en-US')} rules per network interface.`,
  references: ['AWS VPC quotas'],
  check: (subject) => {
    const out: LintDraft[] = [];
    const max = SG_RULES_PER_DIRECTION_PER_FAMILY;
    let total = 0;
    for (const g of subject.groups) {
      const c = groupCounts(g);
      total += c.ingress[4] + c.ingress[6] + c.egress[4] + c.egress[6];
      const over = DIRECTIONS.flatMap((d) => FAMILIES.filter((f) => c[d][f] > max).map((f) => `${c[d][f]} IPv${f} ${d} rules`));
      if (over.length > 0) out.push({ location: g.name, message: `the group holds ${over.join(' and ')}; AWS allows ${max} per direction per address family, so the apply fails.` });
    }
    if (subject.groups.length > SECURITY_GROUPS_PER_ENI) {
      out.push({ location: subject.location, message: `the host's network interface carries ${subject.groups.length} security groups; AWS allows ${SECURITY_GROUPS_PER_ENI}.` });
    }
    if (total > SG_RULES_PER_ENI) {
      out.push({ location: subject.location, message: `the host's security groups hold ${total} rules together; AWS allows ${SG_RULES_PER_ENI} per network interface.` });
    }
    return out;
  },
};
