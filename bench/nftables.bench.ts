/**
 * Benchmark 6: the nftables host wall against the iptables one, in network namespaces.
 *
 * 1. Load time of one host's wall: the rendered nftables file in one `nft -f` (one transaction,
 *    both families, its interval sets) against what the iptables backend runs for the same host
 *    (`ipset restore`, `iptables-restore`, `ip6tables-restore`), each as one shell command in a
 *    fresh namespace, so both sides pay the same `ip netns exec` and shell start-up.
 * 2. Per-packet cost of a 10,000-prefix set: an nftables interval set (`ip daddr @set`) against an
 *    ipset hash:net (`-m set --match-set`), with real UDP packets as in packet.bench.ts. One lookup
 *    is below that benchmark's resolution (docs/benchmarks.md), so the chain holds the same set
 *    match K times (every packet misses, so every rule is tried): cost per match = (time per
 *    packet − time with the empty chain of the same backend) / K.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { HostPolicy, Peer, dnsClient, mailServer, sshAdmin, webServer } from '../lib';
import { renderIptables, renderNftables } from '../lib/render';
import { NetnsLab } from '../__tests__/support/netns';
import { BenchNamespace, median, timed } from './ns';
import { BenchContext, BenchModule, BenchResult } from './types';
import { benchIpsetScript, benchPrefix, packetLab, perPacket, writeSender } from './udp-packets';

const PREFIXES = 10_000;
const REPEAT = 100;
const LOAD_ROUNDS = 7;

/** The article's sample server with 64 admin hosts per family: above the set threshold, so both backends load sets. */
function benchHost(): HostPolicy {
  const admins = [
    ...Array.from({ length: 64 }, (_, i) => Peer.ipv4(`192.0.2.${2 * i + 1}/32`)),
    ...Array.from({ length: 64 }, (_, i) => Peer.ipv6(`2001:db8:a::${(2 * i + 1).toString(16)}/128`)),
  ];
  return HostPolicy.compose('bench', [webServer(), mailServer(), sshAdmin({ from: admins }), dnsClient({ resolvers: [Peer.ipv4('198.51.100.53/32'), Peer.ipv4('198.51.100.54/32')] })]);
}

function version(argv: string[]): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' }).trim().split('\n')[0];
}

function loadTimes(ctx: BenchContext): BenchResult {
  const name = 'host wall load: one nft -f vs ipset restore + iptables-restore + ip6tables-restore (same host)';
  const policy = benchHost();
  const ipt = renderIptables(policy);
  const nft = renderNftables(policy);
  if (ipt.ipsets === undefined || !nft.text.includes('flags interval')) throw new Error('the bench host has no address sets');
  const dir = ctx.workDir;
  for (const [file, text] of [['ipsets', ipt.ipsets], ['rules.v4', ipt.v4], ['rules.v6', ipt.v6], ['twinwall.nft', nft.text]] as const) fs.writeFileSync(path.join(dir, file), text);
  const iptablesScript = `ipset -exist restore < ${dir}/ipsets && iptables-restore < ${dir}/rules.v4 && ip6tables-restore < ${dir}/rules.v6`;
  const nftScript = `nft -f ${dir}/twinwall.nft`;
  const times = { iptables: [] as number[], nftables: [] as number[] };
  for (let round = 0; round < LOAD_ROUNDS; round++) {
    // Alternate which side goes first, so a burst of other work on the machine hits both.
    const order = round % 2 === 0 ? (['iptables', 'nftables'] as const) : (['nftables', 'iptables'] as const);
    for (const side of order) {
      const ns = BenchNamespace.create();
      try {
        times[side].push(timed(() => ns.exec(['sh', '-c', side === 'iptables' ? iptablesScript : nftScript])));
        const check = side === 'iptables' ? ns.exec(['iptables', '-S', 'tw-in']) : ns.exec(['nft', 'list', 'chain', 'inet', 'twinwall', 'tw-in']);
        if (!check.includes('tw4-in-tcp-22')) throw new Error(`${side}: the wall did not load its set match`);
      } finally {
        ns.destroy();
      }
    }
  }
  const ratio = median(times.iptables) / median(times.nftables);
  ctx.log(`load: nft -f ${median(times.nftables).toFixed(1)} ms, iptables + ipset ${median(times.iptables).toFixed(1)} ms`);
  const lines = (t: string) => t.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length;
  return {
    name,
    figures: {
      [`nft -f (median of ${LOAD_ROUNDS})`]: `${median(times.nftables).toFixed(1)} ms`,
      [`ipset + iptables-restore + ip6tables-restore (median of ${LOAD_ROUNDS})`]: `${median(times.iptables).toFixed(1)} ms`,
      'host': `sample server + 64 admin hosts per family; nft file ${lines(nft.text)} lines, iptables ${lines(ipt.v4) + lines(ipt.v6)} lines + ipset ${lines(ipt.ipsets)} lines`,
      nft: version(['nft', '--version']),
      iptables: version(['iptables', '--version']),
    },
    ratio,
    target: '≥ 1× (one transaction no slower than the restores)',
    met: ratio >= 1,
  };
}

type Form = 'iptables-empty' | 'ipset' | 'nft-empty' | 'nft-set';

function load(lab: NetnsLab, form: Form, workDir: string): void {
  lab.exec('host', ['sh', '-c', 'nft delete table inet bench 2>/dev/null; iptables -F OUTPUT 2>/dev/null; ipset destroy bench 2>/dev/null; true']);
  if (form === 'ipset' || form === 'iptables-empty') {
    if (form === 'ipset') {
      lab.exec('host', ['ipset', 'restore'], benchIpsetScript(PREFIXES));
    }
    const body = form === 'ipset' ? Array.from({ length: REPEAT }, () => '-A OUTPUT -m set --match-set bench dst -j ACCEPT') : [];
    lab.exec('host', ['iptables-restore'], ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ...body, 'COMMIT', ''].join('\n'));
    return;
  }
  const file = path.join(workDir, 'bench.nft');
  fs.writeFileSync(
    file,
    [
      'table inet bench {',
      ...(form === 'nft-set' ? ['\tset bench {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t\telements = {', ...Array.from({ length: PREFIXES }, (_, i) => `\t\t\t${benchPrefix(i)},`), '\t\t}', '\t}'] : []),
      '\tchain output {',
      '\t\ttype filter hook output priority filter; policy accept;',
      ...(form === 'nft-set' ? Array.from({ length: REPEAT }, () => '\t\tip daddr @bench accept') : []),
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
  lab.exec('host', ['nft', '-f', file]);
}

async function perPacketCost(ctx: BenchContext): Promise<BenchResult> {
  const name = `per-packet cost of a ${PREFIXES.toLocaleString('en')}-prefix set match: nftables interval set vs ipset hash:net`;
  const sender = writeSender(ctx.workDir);
  const lab = await packetLab();
  try {
    const t: Partial<Record<Form, number[]>> = {};
    // Two passes in alternating order: a change in the machine's load hits both backends.
    for (const pass of [0, 1]) {
      const forms: Form[] = pass === 0 ? ['iptables-empty', 'ipset', 'nft-empty', 'nft-set'] : ['nft-empty', 'nft-set', 'iptables-empty', 'ipset'];
      for (const form of forms) {
        load(lab, form, ctx.workDir);
        const us = perPacket(lab, sender);
        (t[form] ??= []).push(us);
        ctx.log(`${form}: ${us.toFixed(3)} µs per packet`);
      }
    }
    const m = (f: Form) => median(t[f] as number[]);
    // Per set match; sub-noise costs floored at 0.001 µs so that the ratio stays finite.
    const ipsetCost = Math.max((m('ipset') - m('iptables-empty')) / REPEAT, 0.001);
    const nftCost = Math.max((m('nft-set') - m('nft-empty')) / REPEAT, 0.001);
    const ratio = ipsetCost / nftCost;
    const ns = (x: number) => `${(x * 1000).toFixed(0)} ns`;
    return {
      name,
      figures: {
        'nftables interval set, per match': ns(nftCost),
        'ipset hash:net (iptables -m set), per match': ns(ipsetCost),
        [`method`]: `${REPEAT} set matches per packet (all miss); median of 2 passes × 3 runs; empty chains ${m('nft-empty').toFixed(2)} µs (nft) / ${m('iptables-empty').toFixed(2)} µs (iptables) per sendto`,
        nft: version(['nft', '--version']),
        iptables: version(['iptables', '--version']),
      },
      ratio,
      target: 'ratio = ipset cost / nftables cost (> 1: nftables cheaper); no target',
    };
  } finally {
    lab.destroy();
  }
}

function hasNft(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v nft'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const names = ['host wall load: one nft -f vs ipset restore + iptables-restore + ip6tables-restore (same host)', `per-packet cost of a ${PREFIXES.toLocaleString('en')}-prefix set match: nftables interval set vs ipset hash:net`];
    const missing = !ctx.kernel ? 'needs root, ip, iptables, ipset, python3 and network namespaces' : !hasNft() ? 'needs nft (Debian: nftables)' : undefined;
    if (missing !== undefined) return names.map((n) => ({ name: n, figures: {}, skipped: missing }));
    return [loadTimes(ctx), await perPacketCost(ctx)];
  },
};

export const run = module_.run;
export default module_;
