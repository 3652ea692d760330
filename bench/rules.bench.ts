/**
 * Benchmark 2: security-group rules emitted against the minimum cover computed independently
 * (__tests__/support/min-cover.ts: exact search, never calls normalisation), for the 1,000-host
 * fleet and for 500 seeded random small policies whose ranges overlap in staircases, nest, and mix
 * ICMP types and codes with all-protocol rules (the shapes where a greedy merge is not minimal).
 */
import { Cidr, Direction, Family, Flow, HostPolicy, Peer, Port, customRole } from '../lib';
import { familyBits } from '../lib/address';
import { renderSecurityGroupRules } from '../lib/render/security-groups';
import { Box, minimumCover } from '../__tests__/support/min-cover';
import { FLEET_SIZE, fleetPolicy } from './fleet';
import { BenchContext, BenchModule, BenchResult } from './types';

/** The boxes of a flow in one family: one per CIDR of its peer there (Peer.anywhere() has one in each). */
function boxes(flow: Flow, family: Family): Box[] {
  const [lo, hi] = flow.port.span;
  const protocol = flow.port.protocol === 'icmpv6' ? 'icmp' : flow.port.protocol;
  return flow.peer.hostCidrs.filter((c) => c.family === family).map((cidr) => ({ protocol, lo, hi, first: cidr.first, last: cidr.last }));
}

/** The independent minimum for a policy of CIDR peers: per direction and family. */
function minimum(policy: HostPolicy): { rules: number; exact: boolean } {
  let rules = 0;
  let exact = true;
  for (const direction of ['ingress', 'egress'] as Direction[]) {
    for (const family of [4, 6] as Family[]) {
      const flows = policy.flows.map((a) => a.flow).filter((f) => f.direction === direction && f.peer.kind === 'cidr');
      const all = flows.flatMap((f) => boxes(f, family));
      if (all.length === 0) continue;
      const r = minimumCover(all, familyBits(family));
      rules += r.rules;
      exact &&= r.exact;
    }
  }
  return { rules, exact };
}

/** A seeded small policy over 10.0.0.0/28 and ports 20–27 (same shapes as the property test). */
function randomPolicy(seed: number): HostPolicy {
  let x = seed >>> 0;
  const next = (n: number) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x >>> 8) % n;
  };
  const flows: Flow[] = [];
  const count = 2 + next(6);
  for (let k = 0; k < count; k++) {
    const prefix = 28 + next(5);
    const size = 1 << (32 - prefix);
    const network = BigInt(Math.floor((0x0a000000 + next(16)) / size) * size);
    const peer = Peer.fromCidr(Cidr.fromParts(4, network, prefix));
    const a = 20 + next(8);
    const b = 20 + next(8);
    const kind = next(10);
    const port =
      kind < 6 ? Port.tcpRange(Math.min(a, b), Math.max(a, b)) : kind < 7 ? Port.allTraffic() : kind < 8 ? Port.icmpType(next(3)) : kind < 9 ? Port.icmpTypeAndCode(next(3), next(3)) : Port.allIcmp();
    flows.push(Flow.ingress(port, peer, 'bench'));
  }
  return HostPolicy.compose(`r${seed}`, [customRole('random', flows)]);
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const out: BenchResult[] = [];
    const sets: [string, () => HostPolicy[]][] = [
      [`the ${FLEET_SIZE.toLocaleString('en')}-host fleet`, () => Array.from({ length: FLEET_SIZE }, (_, i) => fleetPolicy(i))],
      ['500 random small policies (staircases, nesting, ICMP, all-protocol)', () => Array.from({ length: 500 }, (_, i) => randomPolicy(i + 1))],
    ];
    for (const [name, make] of sets) {
      const policies = make();
      let emitted = 0;
      let min = 0;
      let exact = true;
      let worse = 0;
      for (const p of policies) {
        const specs = renderSecurityGroupRules(p).rules.length;
        const m = minimum(p);
        emitted += specs;
        min += m.rules;
        exact &&= m.exact;
        if (specs > m.rules) worse++;
      }
      ctx.log(`${name}: ${emitted} rules emitted, minimum ${min}`);
      const ratio = emitted / min;
      out.push({
        name: `security-group rules emitted vs independent minimum cover, ${name}`,
        figures: { emitted: String(emitted), minimum: String(min), 'policies above the minimum': String(worse), search: exact ? 'exact (finished)' : 'budget exhausted somewhere (minimum is an upper bound)' },
        ratio,
        target: '1.00',
        met: Math.abs(ratio - 1) < 1e-9 && exact,
      });
    }
    return out;
  },
};

export const run = module_.run;
export default module_;
