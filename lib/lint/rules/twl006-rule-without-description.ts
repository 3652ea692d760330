/** TWL006: a security-group rule without description. */
import { LintRule } from '../rule';
import { allRules, ruleText } from './support';

export const TWL006: LintRule = {
  id: 'TWL006',
  name: 'rule-without-description',
  level: 'warning',
  title: 'a security-group rule has no description',
  fix: 'describe every rule with the role and reason that need it (twinwall writes one on every rule it renders).',
  references: ['checkov CKV_AWS_23'],
  check: (subject) =>
    allRules(subject)
      .filter((r) => r.description === undefined || r.description.trim() === '')
      .map((r) => ({ location: r.source, message: `${ruleText(r)} has no description, so a reviewer cannot tell who needs it.` })),
};
