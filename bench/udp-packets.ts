/**
 * What the per-packet benchmarks share (packet.bench.ts: ipset against a linear chain;
 * nftables.bench.ts: an nftables interval set against ipset): a host and a peer namespace joined
 * by a veth, a Python UDP sender in the host namespace whose time per sendto() includes the
 * host's OUTPUT chain (it runs in the sender's system call), and the synthetic prefixes the sets
 * and chains match. The prefixes are /28s in 10.0.0.0/8 that exist only as match data; every
 * packet goes to BENCH_PEER, which the peer namespace owns, and matches none of them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NetnsLab } from '../__tests__/support/netns';
import { median } from './ns';

export const BENCH_HOST = '203.0.113.10';
export const BENCH_PEER = '203.0.113.1';

/** Sends `count` UDP datagrams to dst:53 after 200 warm-up ones; prints the seconds they took. */
const SENDER = String.raw`
import socket, sys, time
dst, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"twinwall-bench"
for _ in range(200): s.sendto(payload, (dst, 53))
t = time.perf_counter()
for _ in range(count): s.sendto(payload, (dst, 53))
print(time.perf_counter() - t)
`;

/** The i-th synthetic prefix (i < 2^20): 10.a.b.c/28, all distinct, none holding BENCH_PEER. */
export function benchPrefix(i: number): string {
  return `10.${(i >> 12) & 255}.${(i >> 4) & 255}.${(i & 15) << 4}/28`;
}

/** `ipset restore` input for a hash:net set "bench" of the first `n` prefixes. */
export function benchIpsetScript(n: number): string {
  return [`create bench hash:net family inet hashsize 1024 maxelem ${Math.max(65536, n)}`, ...Array.from({ length: n }, (_, i) => `add bench ${benchPrefix(i)}`), ''].join('\n');
}

/** The host and peer namespaces; the peer drops what it receives (no port-unreachable replies). */
export async function packetLab(): Promise<NetnsLab> {
  const lab = await NetnsLab.create({ host: { addresses: [`${BENCH_HOST}/24`] }, peer: { addresses: [`${BENCH_PEER}/24`] } });
  try {
    lab.exec('peer', ['iptables', '-P', 'INPUT', 'DROP']);
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}

/** The sender script, written into `workDir`; returns its path. */
export function writeSender(workDir: string): string {
  const sender = path.join(workDir, 'sender.py');
  fs.writeFileSync(sender, SENDER, { mode: 0o644 });
  return sender;
}

/** Microseconds per sendto(), median of three runs sized to about half a second each. */
export function perPacket(lab: NetnsLab, sender: string): number {
  const once = (count: number) => Number(lab.exec('host', ['/usr/bin/python3', sender, BENCH_PEER, String(count)]).trim());
  const probe = once(500);
  const count = Math.max(500, Math.min(400_000, Math.round((0.5 / probe) * 500)));
  return (median([once(count), once(count), once(count)]) / count) * 1e6;
}
