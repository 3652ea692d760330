/** TWL001: all protocols, or every TCP/UDP port, out to (nearly) the whole Internet. */
import { LintRule } from '../rule';
import { allRules, everyPort, isWide, ruleText, why } from './support';

export const TWL001: LintRule = {
  id: 'TWL001',
  name: 'egress-all-to-anywhere',
  level: 'error',
  title: 'all protocols, or every TCP/UDP port, may go out to (nearly) the whole Internet',
  fix: 'list the services the host sends (roles or Flow.egress per port) and their destinations; a compromised host with this rule can send anything anywhere.',
  references: ['checkov CKV_AWS_382', 'trivy AVD-AWS-0104'],
  check: (subject) =>
    allRules(subject)
      .filter((r) => r.direction === 'egress' && isWide(r.peer) && everyPort(r))
      .map((r) => ({ location: r.source, message: `${ruleText(r)}: the host may send anything to anyone (${why(r)}).` })),
};
