/** TWL008: port-scoped egress to anywhere that a role asked for, with its reason. */
import { formatProvenance } from '../../provenance';
import { LintRule } from '../rule';
import { portScopedEgressToAnywhere, ruleText } from './support';

export const TWL008: LintRule = {
  id: 'TWL008',
  name: 'egress-to-anywhere-justified',
  level: 'notice',
  title: 'port-scoped egress to (nearly) the whole Internet that a role asked for (SMTP delivery, recursive DNS), with its reason',
  fix: 'nothing to fix if the reason holds (mail delivery, recursive DNS); narrow the destination when a relay or fixed peers will do.',
  references: [],
  check: (subject) =>
    portScopedEgressToAnywhere(subject)
      .filter((r) => r.because.length > 0)
      .map((r) => ({ location: r.source, message: `${ruleText(r)}, because ${formatProvenance(r.because)}.` })),
};
