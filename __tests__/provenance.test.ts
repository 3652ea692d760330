/**
 * Provenance as text (lib/provenance.ts): the one module that writes the security-group
 * description and netfilter comment forms and reads them back. What the renderers write, the
 * readers (lint, report, diff) recover exactly.
 */
import { HostPolicy } from '../lib';
import { PolicyRule, Provenance } from '../lib/policy';
import { awsDescription } from '../lib/text';
import { commentText } from '../lib/render/iptables';
import { POLICY_CHAINS } from '../lib/check/host-only';
import {
  OWN_RULE_LEAD,
  formatProvenance,
  ownRuleComment,
  ownRuleWhat,
  provenanceComment,
  provenanceDescription,
  provenanceFromComment,
  provenanceFromDescription,
} from '../lib/provenance';
import { renderHost } from '../lib/render';
import { parseIptablesRestore } from '../lib/check/iptables-parse';
import { ROLE_FIXTURES, edgePolicy } from './support/fixtures';

const BECAUSE: Provenance[] = [
  { role: 'mailServer', service: 'smtp', reason: 'delivering mail to other mail servers' },
  { role: 'webServer', service: 'http', reason: 'serving web pages' },
  { role: 'monitoring', reason: 'Prometheus scrapes node_exporter; every 15 s' },
];

describe('provenance text', () => {
  it('writes the description and comment forms', () => {
    expect(provenanceDescription(BECAUSE)).toBe(
      'mailServer: smtp - delivering mail to other mail servers; webServer: http - serving web pages; monitoring: Prometheus scrapes node_exporter; every 15 s',
    );
    expect(provenanceComment(BECAUSE)).toBe('mailServer/smtp: delivering mail to other mail servers | webServer/http: serving web pages | monitoring: Prometheus scrapes node_exporter; every 15 s');
    expect(provenanceDescription([BECAUSE[0], BECAUSE[0]])).toBe('mailServer: smtp - delivering mail to other mail servers');
    expect(formatProvenance(BECAUSE.slice(0, 1))).toBe('mailServer (smtp): delivering mail to other mail servers');
  });

  it('reads back what it writes, a reason with "; " in it too', () => {
    expect(provenanceFromDescription(provenanceDescription(BECAUSE))).toEqual(BECAUSE);
    expect(provenanceFromComment(provenanceComment(BECAUSE))).toEqual(BECAUSE);
  });

  it('reads no provenance from text in neither shape, nor from its own fixed rules', () => {
    expect(provenanceFromDescription('allow ssh from the office')).toEqual([]);
    expect(provenanceFromDescription(undefined)).toEqual([]);
    expect(provenanceFromComment('hand-written: comment | and more of it!')).toEqual([]);
    expect(provenanceFromComment(ownRuleComment('loopback'))).toEqual([]);
  });

  it("owns the lead of twinwall's own rule comments", () => {
    expect(ownRuleComment('loopback')).toBe(`${OWN_RULE_LEAD}loopback`);
    expect(ownRuleWhat(ownRuleComment('loopback'))).toBe('loopback');
    expect(ownRuleWhat('mailServer/smtp: x')).toBe('mailServer/smtp: x');
  });

  it.each([...Object.keys(ROLE_FIXTURES), 'edge'])("fixture %s: every rendered description and policy comment is its rule's provenance, and reads back as it", (name) => {
    const policy: HostPolicy = name === 'edge' ? edgePolicy() : ROLE_FIXTURES[name]();
    const r = renderHost(policy);
    const key = (list: readonly Provenance[]) => list.map((x) => `${x.role}/${x.service ?? ''}/${x.reason}`).join('|');
    const roles = (list: readonly Provenance[]) => list.map((x) => x.role);
    // Text fitted to its target (AWS's characters and 255; netfilter's) reads back with the same roles, its reasons as fitted.
    const readsBack = (back: Provenance[], because: readonly Provenance[], exact: boolean) => (exact ? expect(key(back)).toBe(key(because)) : expect(roles(back)).toEqual(roles(because).slice(0, back.length)));
    for (const spec of r.securityGroups.rules) {
      const rule = policy.rules.find((x) => awsDescription(provenanceDescription(x.because)) === spec.description);
      expect(rule).toBeDefined();
      const because = (rule as PolicyRule).because;
      readsBack(provenanceFromDescription(spec.description), because, provenanceDescription(because) === spec.description);
    }
    for (const [family, text] of [[4, r.iptables.v4], [6, r.iptables.v6]] as const) {
      const doc = parseIptablesRestore(text, family);
      for (const chain of doc.tables.get('filter')?.chains.values() ?? []) {
        for (const rule of chain.rules) {
          if (rule.comment === undefined) continue;
          if (!POLICY_CHAINS.includes(chain.name)) {
            expect(rule.comment.startsWith(OWN_RULE_LEAD)).toBe(true);
            continue;
          }
          const comment = rule.comment;
          const source = policy.rules.find((x) => comment === commentText(provenanceComment(x.because)) || comment.startsWith(`${commentText(provenanceComment(x.because))} (ipset `));
          expect(source).toBeDefined();
          const because = (source as PolicyRule).because;
          const written = commentText(provenanceComment(because));
          readsBack(provenanceFromComment(comment.slice(0, written.length)), because, written === provenanceComment(because));
        }
      }
    }
  });
});
