/**
 * Benchmark 4: per-packet cost of matching a destination against N prefixes, as an ipset
 * (hash:net, one rule) and as a linear chain (one rule per prefix), measured with real UDP
 * packets: a sender in the host namespace sends to the peer namespace over a veth pair, and the
 * host's OUTPUT chain runs in the sender's system call, so the time per sendto() is the time the
 * filter costs plus a constant. Cost = time per packet with the rules − time with an empty chain.
 * The packets' destination is in none of the prefixes (every rule is evaluated, the worst case for
 * a chain, a miss for the set). The prefixes are synthetic /28s in 10.0.0.0/8 that only exist as
 * match data; every packet goes to 203.0.113.1, which the peer namespace owns.
 */
import { execFileSync } from 'child_process';
import { NetnsLab } from '../__tests__/support/netns';
import { BenchContext, BenchModule, BenchResult } from './types';
import { benchIpsetScript, benchPrefix, packetLab, perPacket, writeSender } from './udp-packets';

type Form = 'empty' | 'linear' | 'ipset';

function load(lab: NetnsLab, form: Form, n: number): void {
  lab.exec('host', ['iptables', '-F']);
  lab.exec('host', ['sh', '-c', 'ipset destroy bench 2>/dev/null || true']);
  const head = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]'];
  if (form === 'ipset') {
    lab.exec('host', ['ipset', 'restore'], benchIpsetScript(n));
  }
  const body =
    form === 'empty'
      ? []
      : form === 'linear'
        ? Array.from({ length: n }, (_, i) => `-A OUTPUT -d ${benchPrefix(i)} -p udp -m udp --dport 53 -j ACCEPT`)
        : ['-A OUTPUT -m set --match-set bench dst -p udp -m udp --dport 53 -j ACCEPT'];
  lab.exec('host', ['iptables-restore'], [...head, ...body, 'COMMIT', ''].join('\n'));
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const name = 'per-packet cost with 10,000 prefixes: ipset vs linear chain';
    if (!ctx.kernel) return [{ name, figures: {}, target: '≥ 10× better', skipped: 'needs root, ip, iptables, ipset, python3 and network namespaces' }];
    const sender = writeSender(ctx.workDir);
    const lab = await packetLab();
    try {
      const cost: Record<string, number> = {};
      load(lab, 'empty', 0);
      const base = perPacket(lab, sender);
      ctx.log(`empty chain: ${base.toFixed(3)} µs per packet`);
      for (const [form, n] of [['linear', 1000], ['linear', 10000], ['ipset', 1000], ['ipset', 10000], ['ipset', 100000]] as [Form, number][]) {
        load(lab, form, n);
        const t = perPacket(lab, sender);
        cost[`${form} ${n}`] = t - base;
        ctx.log(`${form} ${n.toLocaleString('en')}: ${t.toFixed(3)} µs per packet (${(t - base).toFixed(3)} µs over the empty chain)`);
      }
      // Sub-noise costs are floored at 0.01 µs so that a ratio stays finite and conservative.
      const floor = (x: number) => Math.max(x, 0.01);
      const ratio = floor(cost['linear 10000']) / floor(cost['ipset 10000']);
      const flat = floor(cost['ipset 100000']) / floor(cost['ipset 1000']);
      const us = (x: number) => `${x.toFixed(3)} µs`;
      const iptables = execFileSync('iptables', ['--version'], { encoding: 'utf8' }).trim();
      return [
        {
          name,
          figures: {
            'empty chain (per sendto, the constant)': us(base),
            'linear 1,000': us(cost['linear 1000']),
            'linear 10,000': us(cost['linear 10000']),
            'ipset 10,000': us(cost['ipset 10000']),
            iptables,
          },
          ratio,
          target: '≥ 10× better',
          met: ratio >= 10,
        },
        {
          name: 'ipset per-packet cost as the set grows from 1,000 to 100,000 prefixes',
          figures: { 'ipset 1,000': us(cost['ipset 1000']), 'ipset 10,000': us(cost['ipset 10000']), 'ipset 100,000': us(cost['ipset 100000']) },
          ratio: flat,
          target: 'flat (100,000 vs 1,000 within noise; ≤ 1.5×)',
          met: flat <= 1.5 || cost['ipset 100000'] < 0.05,
        },
      ];
    } finally {
      lab.destroy();
    }
  },
};

export const run = module_.run;
export default module_;
