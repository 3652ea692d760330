/** TWL003: an open recursive resolver. */
import { LintSgRule } from '../model';
import { LintRule } from '../rule';
import { allRules, covers, isWide, peerText, ruleText, why } from './support';

export const TWL003: LintRule = {
  id: 'TWL003',
  name: 'open-resolver',
  level: 'error',
  title: 'an open recursive resolver: DNS answered for (nearly) anyone while querying port 53 anywhere',
  fix: 'answer recursive queries for declared clients only: dnsServer({ mode: "recursive", clients: [vpcCidr] }).',
  references: ['US-CERT TA13-088A (DNS amplification)'],
  check: (subject) => {
    const rules = allRules(subject);
    const dns = (r: LintSgRule) => covers(r, 'udp', 53) || covers(r, 'tcp', 53);
    const answers = rules.filter((r) => r.direction === 'ingress' && isWide(r.peer) && dns(r));
    const queries = rules.filter((r) => r.direction === 'egress' && isWide(r.peer) && dns(r));
    if (answers.length === 0 || queries.length === 0) return [];
    return answers.map((r) => ({
      location: r.source,
      message: `${ruleText(r)} lets (nearly) anyone query this host, and it queries port 53 anywhere (${queries.map((q) => peerText(q.peer)).join(', ')}): an open recursive resolver amplifies DDoS attacks (${why(r)}).`,
    }));
  },
};
