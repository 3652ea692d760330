/** TWL009: port-scoped egress to anywhere that no twinwall role asked for. */
import { LintRule } from '../rule';
import { portScopedEgressToAnywhere, ruleText, why } from './support';

export const TWL009: LintRule = {
  id: 'TWL009',
  name: 'egress-to-anywhere-unexplained',
  level: 'warning',
  title: 'port-scoped egress to (nearly) the whole Internet that no twinwall role asked for',
  fix: 'express it as a role flow with a reason (customRole(…, [Flow.egress(port, peer, reason)])), or narrow the destination.',
  references: ['trivy AVD-AWS-0104'],
  check: (subject) =>
    portScopedEgressToAnywhere(subject)
      .filter((r) => r.because.length === 0)
      .map((r) => ({ location: r.source, message: `${ruleText(r)} with no twinwall role behind it (${why(r)}).` })),
};
