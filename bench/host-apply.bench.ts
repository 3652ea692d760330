/**
 * Benchmark 3: applying a host wall of 1,000 rules, inside a network namespace: one atomic
 * `iptables-restore` of the whole table against one `iptables -A` per rule (each its own process,
 * as a script that appends rules does it), on the machine's iptables backend.
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { BenchNamespace, median, timed } from './ns';
import { BenchContext, BenchModule, BenchResult } from './types';

const RULES = 1000;

/** 1,000 SSH rules from distinct /32s in 10.0.0.0/8 (synthetic; nothing is sent here). */
function ruleArgs(i: number): string {
  return `-s 10.${(i >> 8) & 255}.${i & 255}.7/32 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "bench rule ${i}" -j ACCEPT`;
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const name = `host apply of ${RULES.toLocaleString('en')} rules: one iptables-restore vs one iptables -A per rule`;
    if (!ctx.kernel) return [{ name, figures: {}, target: '≥ 30×', skipped: 'needs root, ip, iptables and network namespaces' }];
    const restoreFile = path.join(ctx.workDir, 'rules.v4');
    fs.writeFileSync(restoreFile, ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':tw-in - [0:0]', '-A INPUT -j tw-in', ...Array.from({ length: RULES }, (_, i) => `-A tw-in ${ruleArgs(i)}`), 'COMMIT', ''].join('\n'));
    const script = path.join(ctx.workDir, 'append.sh');
    fs.writeFileSync(
      script,
      ['set -e', 'iptables -P INPUT DROP', 'iptables -N tw-in', 'iptables -A INPUT -j tw-in', ...Array.from({ length: RULES }, (_, i) => `iptables -A tw-in ${ruleArgs(i)}`), ''].join('\n'),
    );
    const version = execFileSync('iptables', ['--version'], { encoding: 'utf8' }).trim();
    const restores: number[] = [];
    const appends: number[] = [];
    for (let round = 0; round < 3; round++) {
      const a = BenchNamespace.create();
      try {
        restores.push(timed(() => a.exec(['iptables-restore', restoreFile])));
        const loaded = a.exec(['iptables', '-S', 'tw-in']).split('\n').filter((l) => l.startsWith('-A tw-in')).length;
        if (loaded !== RULES) throw new Error(`iptables-restore loaded ${loaded} rules, not ${RULES}`);
      } finally {
        a.destroy();
      }
      if (round === 2) continue; // the slow side twice is enough
      const b = BenchNamespace.create();
      try {
        appends.push(timed(() => b.exec(['sh', script])));
        const loaded = b.exec(['iptables', '-S', 'tw-in']).split('\n').filter((l) => l.startsWith('-A tw-in')).length;
        if (loaded !== RULES) throw new Error(`iptables -A loaded ${loaded} rules, not ${RULES}`);
      } finally {
        b.destroy();
      }
      ctx.log(`round ${round + 1}: restore ${restores[round].toFixed(0)} ms, append ${appends[round].toFixed(0)} ms`);
    }
    const ratio = median(appends) / median(restores);
    return [
      {
        name,
        figures: { 'iptables-restore (median of 3)': `${median(restores).toFixed(0)} ms`, 'iptables -A ×1,000 (median of 2)': `${(median(appends) / 1000).toFixed(2)} s`, iptables: version },
        ratio,
        target: '≥ 30×',
        met: ratio >= 30,
      },
    ];
  },
};

export const run = module_.run;
export default module_;
