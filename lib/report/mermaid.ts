/**
 * A Mermaid flowchart of one stack: its hosts and what flows between them and their peers
 * (GitHub renders ```mermaid blocks in comments). The Internet is one node; a peer named by a
 * security group that belongs to a host of the stack is that host. A dotted edge is a flow only
 * one wall admits.
 */
import { mermaidLabel as label } from '../markdown';
import { ReportStack } from './report';

/** Edges beyond this are summarised in a note, so a diagram stays readable (and small). */
export const MERMAID_MAX_EDGES = 80;

function isAnywhere(peer: string): boolean {
  return peer === 'any IPv4' || peer === 'any IPv6';
}

export function stackDiagram(stack: ReportStack): string {
  const ids = new Map<string, string>();
  const nodes: string[] = [];
  const node = (key: string, text: string, shape: 'host' | 'internet' | 'peer'): string => {
    const existing = ids.get(key);
    if (existing !== undefined) return existing;
    const id = `n${ids.size}`;
    ids.set(key, id);
    const l = label(text);
    nodes.push(shape === 'host' ? `  ${id}["${l}"]` : shape === 'internet' ? `  ${id}(("${l}"))` : `  ${id}[/"${l}"/]`);
    return id;
  };
  for (const h of stack.hosts) node(`host:${h.name}`, h.name, 'host');
  const edges = new Map<string, { from: string; to: string; dotted: boolean; labels: Set<string> }>();
  for (const h of stack.hosts) {
    const self = node(`host:${h.name}`, h.name, 'host');
    for (const f of h.flows) {
      const others =
        f.peerHosts.length > 0
          ? f.peerHosts.map((p) => node(`host:${p}`, p, 'host'))
          : [...new Set(f.peers.map((p) => (isAnywhere(p) ? node('internet', 'Internet', 'internet') : node(`peer:${p}`, p, 'peer'))))];
      const dotted = !(f.networkWall.admits && f.hostWall.admits);
      const what = f.service ?? f.traffic;
      for (const other of others) {
        const [from, to] = f.direction === 'ingress' ? [other, self] : [self, other];
        const key = `${from}>${to}>${dotted}`;
        const e = edges.get(key) ?? { from, to, dotted, labels: new Set<string>() };
        e.labels.add(what);
        edges.set(key, e);
      }
    }
  }
  const list = [...edges.values()];
  const shown = list.slice(0, MERMAID_MAX_EDGES);
  const lines = ['```mermaid', 'flowchart LR', ...nodes];
  for (const e of shown) lines.push(`  ${e.from} ${e.dotted ? '-.->' : '-->'}|"${label([...e.labels].sort().join(', '))}"| ${e.to}`);
  lines.push('```');
  if (list.length > shown.length) lines.push(`_${list.length - shown.length} more edges are not drawn; the tables below list every flow._`);
  return lines.join('\n');
}
