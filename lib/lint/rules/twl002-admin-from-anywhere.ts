/** TWL002: SSH or RDP reachable from (nearly) the whole Internet. */
import { WIDE_PREFIX } from '../../roles';
import { LintDraft, LintRule } from '../rule';
import { allRules, covers, isWide, ruleText, why } from './support';

export const TWL002: LintRule = {
  id: 'TWL002',
  name: 'admin-from-anywhere',
  level: 'error',
  title: 'SSH (tcp/22) or RDP (3389) is reachable from (nearly) the whole Internet',
  fix: 'admit administration from your admin networks or a bastion only (sshAdmin({ from: [...] })).',
  references: ['checkov CKV_AWS_24', 'checkov CKV_AWS_25', 'trivy AVD-AWS-0107'],
  check: (subject) => {
    const out: LintDraft[] = [];
    for (const r of allRules(subject)) {
      if (r.direction !== 'ingress' || !isWide(r.peer, WIDE_PREFIX.adminV6)) continue;
      const what = [covers(r, 'tcp', 22) ? 'SSH (tcp/22)' : '', covers(r, 'tcp', 3389) || covers(r, 'udp', 3389) ? 'RDP (3389)' : ''].filter((s) => s !== '');
      if (what.length === 0) continue;
      out.push({ location: r.source, message: `${ruleText(r)} admits ${what.join(' and ')} from (nearly) the whole Internet (${why(r)}).` });
    }
    return out;
  },
};
