/** TWL011: egress to (nearly) anywhere on a port worms spread on. */
import { LintRule } from '../rule';
import { portScopedEgressToAnywhere, ruleText, why } from './support';

/**
 * Ports worms spread on and no server role needs to reach on the Internet: egress to (nearly)
 * anywhere on one of them is TWL011. Slammer (udp/1434) first, then the classics.
 */
export const WORM_PORTS: readonly { readonly protocol: 'tcp' | 'udp'; readonly from: number; readonly to: number; readonly what: string }[] = [
  { protocol: 'udp', from: 1434, to: 1434, what: 'SQL Server resolution (Slammer)' },
  { protocol: 'tcp', from: 135, to: 139, what: 'RPC and NetBIOS (Blaster)' },
  { protocol: 'udp', from: 135, to: 139, what: 'RPC and NetBIOS' },
  { protocol: 'tcp', from: 445, to: 445, what: 'SMB (WannaCry)' },
  { protocol: 'udp', from: 445, to: 445, what: 'SMB' },
  { protocol: 'tcp', from: 23, to: 23, what: 'telnet (Mirai)' },
  { protocol: 'udp', from: 69, to: 69, what: 'TFTP' },
];

/** "udp/1434 (SQL Server resolution (Slammer))". */
function portText(w: (typeof WORM_PORTS)[number]): string {
  return `${w.protocol}/${w.from === w.to ? w.from : `${w.from}-${w.to}`} (${w.what})`;
}

export const TWL011: LintRule = {
  id: 'TWL011',
  name: 'egress-worm-port',
  level: 'error',
  title: `egress to (nearly) the whole Internet on a port no server role needs and worms spread on: ${WORM_PORTS.map(portText).join(', ')}`,
  fix: 'drop the flow, or narrow it to the peers you mean; if a host really must, suppress TWL011 with the reason.',
  references: [],
  // The all-port case is TWL001's.
  check: (subject) =>
    portScopedEgressToAnywhere(subject).flatMap((r) => {
      const hit = WORM_PORTS.filter((w) => r.protocol === w.protocol && (r.fromPort ?? 0) <= w.to && (r.toPort ?? 65535) >= w.from);
      if (hit.length === 0) return [];
      const ports = hit.map(portText).join(', ');
      return [{ location: r.source, message: `${ruleText(r)} reaches ${ports}, which worms use to spread and no server role needs (${why(r)}).` }];
    }),
};
