/**
 * Property: for any valid policy, what FilteredHost synthesizes passes `twinwall check` — the
 * security-group rules and the iptables tables rebuilt from the artefacts admit exactly the same
 * new connections, up to the documented exceptions.
 */
import * as fc from 'fast-check';
import { checkStacks } from '../lib/check';
import { randomHost, synthRandomHost } from './support/random-policy';

describe('twinwall check, random policies', () => {
  it('finds no disagreement between the walls FilteredHost synthesizes', () => {
    let checked = 0;
    fc.assert(
      fc.property(randomHost, (h) => {
        const json = synthRandomHost(h);
        fc.pre(json !== undefined);
        const report = checkStacks([{ name: 'random', json }]);
        expect(report.problems).toEqual([]);
        expect(report.hosts).toHaveLength(1);
        expect(report.hosts[0].findings.map((f) => f.text)).toEqual([]);
        checked++;
      }),
      { numRuns: 20, seed: Number(process.env.TWINWALL_SEED ?? 20260427) },
    );
    expect(checked).toBeGreaterThan(10);
  }, 120000);
});
