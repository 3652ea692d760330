/**
 * Property: for any valid policy, with either host-wall backend, what FilteredHost synthesizes
 * passes `twinwall check` — the security-group rules and the host wall (iptables tables or the
 * nftables file) rebuilt from the artefacts admit exactly the same new connections, up to the
 * documented exceptions.
 */
import * as fc from 'fast-check';
import { checkStacks } from '../lib/check';
import { randomHost, synthRandomHost } from './support/random-policy';

describe('twinwall check, random policies', () => {
  it('finds no disagreement between the walls FilteredHost synthesizes', () => {
    const checked = { iptables: 0, nftables: 0 };
    fc.assert(
      fc.property(randomHost, (h) => {
        const json = synthRandomHost(h);
        fc.pre(json !== undefined);
        const report = checkStacks([{ name: 'random', json }]);
        expect(report.problems).toEqual([]);
        expect(report.hosts).toHaveLength(1);
        expect(report.hosts[0].findings.map((f) => f.text)).toEqual([]);
        checked[h.hostFirewall]++;
      }),
      { numRuns: 20, seed: Number(process.env.TWINWALL_SEED ?? 20260427) },
    );
    expect(checked.iptables + checked.nftables).toBeGreaterThan(10);
    expect(Math.min(checked.iptables, checked.nftables)).toBeGreaterThan(2);
  }, 120000);
});
