/**
 * ipset definitions in `ipset save` / `ipset restore` form (`create NAME TYPE …` and
 * `add NAME ENTRY …` lines, or the same as `ipset create|add …` commands), as found in user-data
 * (a write_files entry such as /etc/iptables/ipsets, or commands in bootcmd/runcmd). Pure.
 *
 * Supported types: hash:ip, hash:net, bitmap:ip (one address dimension) and hash:ip,port,
 * hash:net,port (an address and a protocol:port). Any other type is kept as unsupported, and a
 * rule matching it is undecidable.
 */
import { Family } from '../address';
import { parseCidrLenient } from './addresses';
import { IntervalSet } from './space';
import { PROTOCOL_NUMBERS } from './iptables-modules';

export interface IpsetMember {
  readonly addresses: IntervalSet;
  /** For …,port types: protocol number and ports. */
  readonly proto?: number;
  readonly ports?: IntervalSet;
  readonly nomatch: boolean;
}

export interface IpsetDefinition {
  readonly name: string;
  readonly type: string;
  readonly family: Family;
  readonly members: readonly IpsetMember[];
  /** Why the checker cannot use this set, if it cannot. */
  readonly unsupported?: string;
}

const SUPPORTED = new Set(['hash:ip', 'hash:net', 'bitmap:ip', 'hash:ip,port', 'hash:net,port']);
/** The protocols ipset's `,proto:port` part takes by name, numbered by iptables' own table. */
const IPSET_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite', 'icmp', 'icmpv6', 'ipv6-icmp']);

function addressPart(text: string, family: Family): IntervalSet {
  const dash = text.indexOf('-');
  if (dash > 0 && !text.includes('/')) {
    const a = parseCidrLenient(text.slice(0, dash));
    const b = parseCidrLenient(text.slice(dash + 1));
    if (a.family !== family || b.family !== family) throw new Error(`${text} is not IPv${family}`);
    return IntervalSet.of(a.set.first, b.set.last);
  }
  const c = parseCidrLenient(text);
  if (c.family !== family) throw new Error(`${text} is not IPv${family}`);
  return c.set;
}

function portPart(text: string): { proto: number; ports: IntervalSet } {
  let proto = 6;
  let p = text;
  const colon = text.indexOf(':');
  if (colon >= 0) {
    const name = text.slice(0, colon).toLowerCase();
    if (!IPSET_PROTOCOLS.has(name)) throw new Error(`unknown protocol ${name}`);
    proto = PROTOCOL_NUMBERS[name];
    p = text.slice(colon + 1);
  }
  const m = /^(\d+)(?:-(\d+))?$/.exec(p);
  if (!m) throw new Error(`unreadable port ${text}`);
  return { proto, ports: IntervalSet.of(Number(m[1]), Number(m[2] ?? m[1])) };
}

/** The `create`/`add` lines of any number of texts, as one `ipset restore` script. */
export function ipsetScript(texts: readonly string[]): string {
  const out: string[] = [];
  for (const text of texts) {
    for (const raw of text.split('\n')) {
      const line = raw.trim().replace(/^(\/usr)?(\/s?bin\/)?ipset\s+(-exist\s+|-!\s+)?/, '');
      if (/^(create|add)\s+\S+\s+\S+/.test(line)) out.push(line);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Collect ipset definitions from any number of texts (later definitions of a name add to it). */
export function parseIpsets(texts: readonly string[]): Map<string, IpsetDefinition> {
  const sets = new Map<string, { name: string; type: string; family: Family; members: IpsetMember[]; unsupported?: string }>();
  for (const text of texts) {
    for (const raw of text.split('\n')) {
      const words = raw.trim().replace(/^(\/usr)?(\/s?bin\/)?ipset\s+(-exist\s+|-!\s+)?/, '').split(/\s+/);
      const cmd = words[0];
      if ((cmd === 'create' || cmd === '-N' || cmd === 'n') && words.length >= 3) {
        const name = words[1];
        const type = words[2];
        const fi = words.indexOf('family');
        const family: Family = fi >= 0 && words[fi + 1] === 'inet6' ? 6 : 4;
        const prior = sets.get(name);
        if (prior === undefined) {
          sets.set(name, { name, type, family, members: [], ...(SUPPORTED.has(type) ? {} : { unsupported: `set type ${type} is not modelled` }) });
        }
        continue;
      }
      if ((cmd === 'add' || cmd === '-A' || cmd === 'a') && words.length >= 3) {
        const set = sets.get(words[1]);
        if (set === undefined || set.unsupported !== undefined) continue;
        const entry = words[2];
        const nomatch = words.includes('nomatch');
        try {
          if (set.type.endsWith(',port')) {
            const [addr, port] = entry.split(',');
            if (port === undefined) throw new Error(`entry ${entry} has no port`);
            set.members.push({ addresses: addressPart(addr, set.family), ...portPart(port), nomatch });
          } else {
            set.members.push({ addresses: addressPart(entry, set.family), nomatch });
          }
        } catch (e) {
          set.unsupported = `entry ${JSON.stringify(entry)}: ${(e as Error).message}`;
        }
      }
    }
  }
  return new Map([...sets].map(([k, v]) => [k, { ...v, members: [...v.members] }]));
}
