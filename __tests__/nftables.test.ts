/**
 * The nftables host wall: golden files for every role fixture, the properties every rendered file
 * must have, its parity with the iptables wall (same entries per family, same sets, same LOG
 * prefixes), and (tier "nft -c") the real parser and kernel's verdict on each rendering.
 */
import { provenanceComment } from '../lib/provenance';
import { execFileSync } from 'child_process';
import { Flow, HostPolicy, Peer, Port, customRole, ntpClient } from '../lib';
import {
  DEFAULT_HOST_FIREWALL,
  DEFAULT_IPSET_THRESHOLD,
  IPTABLES_CHAINS,
  LOG_PREFIX_MAX,
  NFT_COMMENT_MAX,
  NFT_TABLE,
  commentText,
  layoutPolicy,
  logPrefix,
  nftRate,
  renderHost,
  renderHostWall,
  renderIptables,
  renderNftables,
  verdictChains,
} from '../lib/render';
import { caught } from './support/caught';
import { expectGolden } from './support/golden';
import { ROLE_FIXTURES, edgePolicy, sampleServer } from './support/fixtures';
import { describeTier, netns, nft, onPath, root } from './support/tiers';

const ALL: Record<string, () => HostPolicy> = { ...ROLE_FIXTURES, edge: () => edgePolicy(), edgeAudit: () => edgePolicy({ audit: true }) };
const CASES = Object.entries(ALL);

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** The rule lines of one chain (without their indentation), in order. */
function chainRules(text: string, chain: string): string[] {
  const all = text.split('\n');
  const start = all.indexOf(`\tchain ${chain} {`);
  if (start < 0) return [];
  const end = all.indexOf('\t}', start);
  return all
    .slice(start + 1, end)
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('type filter hook'));
}

/** Declared chains and sets of the table. */
function declared(text: string, kind: 'chain' | 'set'): string[] {
  return [...text.matchAll(new RegExp(`^\\t${kind} (\\S+) \\{$`, 'gm'))].map((m) => m[1]);
}

function comments(text: string): string[] {
  return [...text.matchAll(/comment "([^"]*)"/g)].map((m) => m[1]);
}


describe('renderNftables golden files', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    expectGolden(`nftables/${name}.nft`, renderNftables(ROLE_FIXTURES[name]()).text);
  });
});

describe('renderNftables: properties of every file', () => {
  it.each(CASES)('%s: replaces its own table only, in one transaction, and never flushes the ruleset', (_n, make) => {
    const text = renderNftables(make()).text;
    const body = lines(text).filter((l) => !l.startsWith('#'));
    expect(body.slice(0, 3)).toEqual(['add table inet twinwall', 'delete table inet twinwall', 'table inet twinwall {']);
    expect(body[body.length - 1]).toBe('}');
    // The only top-level statements are those three: nothing else is added, deleted or flushed.
    expect(body.filter((l) => !l.startsWith('\t') && l !== '}')).toHaveLength(3);
    expect(text).not.toMatch(/\bflush\b/);
    expect([...body.join('\n').matchAll(/\btable (\S+) (\S+)/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(Array(3).fill(`${NFT_TABLE.family} ${NFT_TABLE.name}`));
  });

  it.each(CASES)('%s: three base chains, each with policy drop in the file', (_n, make) => {
    const text = renderNftables(make()).text;
    const hooks = [...text.matchAll(/^\t\ttype filter hook (\S+) priority filter; policy (\S+);$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(hooks).toEqual(['input drop', 'forward drop', 'output drop']);
  });

  it.each(CASES)('%s: names no interface but lo', (_n, make) => {
    const text = renderNftables(make()).text;
    const interfaces = [...text.matchAll(/\b([io]if(?:name)?) (\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(interfaces).toEqual(['iifname "lo"', 'oifname "lo"']);
  });

  it.each(CASES)('%s: every chain and set referenced is declared, every one declared is used', (_n, make) => {
    const text = lines(renderNftables(make()).text)
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    const chains = declared(text, 'chain');
    const userChains = chains.filter((c) => !['input', 'forward', 'output'].includes(c));
    expect(new Set([...text.matchAll(/\bjump (\S+)/g)].map((m) => m[1]))).toEqual(new Set(userChains));
    expect(new Set([...text.matchAll(/@(\S+)/g)].map((m) => m[1]))).toEqual(new Set(declared(text, 'set')));
    // The chains are the iptables wall's, by the same names.
    const iptablesChains = lines(renderIptables(make()).v4)
      .filter((l) => l.startsWith(':tw-'))
      .map((l) => l.slice(1).split(' ')[0]);
    expect(userChains).toEqual(iptablesChains);
  });

  it.each(CASES)('%s: comments are quoted safely and fit in 128 bytes; LOG prefixes are the iptables wall\'s', (_n, make) => {
    const policy = make();
    const text = renderNftables(policy).text;
    for (const l of lines(text).filter((x) => x.includes('comment'))) expect(l).toMatch(/comment "[ !#-[\]-~]*"$/);
    for (const c of comments(text)) expect(Buffer.byteLength(c)).toBeLessThanOrEqual(NFT_COMMENT_MAX);
    const prefixes = [...text.matchAll(/log prefix "([^"]*)"/g)].map((m) => m[1]);
    for (const p of prefixes) expect(p.length).toBeLessThanOrEqual(LOG_PREFIX_MAX);
    // learn reads these: the very prefixes the iptables wall writes, no more, no fewer.
    const iptablesPrefixes = (t: string) => new Set([...t.matchAll(/--log-prefix "([^"]*)"/g)].map((m) => m[1]));
    expect(new Set(prefixes)).toEqual(iptablesPrefixes(renderIptables(policy).v4));
    expect(new Set(prefixes)).toEqual(iptablesPrefixes(renderIptables(policy).v6));
  });

  it.each(CASES)('%s: every log is rate-limited and comes before its chain\'s verdict; outbound logs carry the uid', (_n, make) => {
    const policy = make();
    const text = renderNftables(policy).text;
    const audit = policy.options.audit;
    for (const v of verdictChains(policy)) {
      const body = chainRules(text, v.chain);
      const prefix = logPrefix(v.direction, audit ? 'audit' : 'drop', v.reason);
      const log = `log prefix "${prefix}"${v.uid ? ' flags skuid' : ''}`;
      const limit = 'limit rate 10/minute burst 20 packets';
      if (audit) {
        // Each connection logged once (its conntrack mark), untracked packets rate-limited, then accepted.
        expect(body).toEqual([`ct mark & 0x10000000 == 0x0 ${log}`, `ct state invalid,untracked ${limit} ${log}`, 'ct mark set ct mark | 0x10000000', 'accept']);
      } else {
        expect(body).toEqual([`${limit} ${log}`, 'drop']);
      }
    }
    expect(text).toMatch(/log prefix/);
  });

  it.each(CASES)('%s: linear form: one commented accept per policy rule and host CIDR, IPv4 then IPv6, each family said', (_n, make) => {
    const policy = make();
    const text = renderNftables(policy, { ipsetThreshold: Infinity }).text;
    for (const [chain, direction] of [
      [IPTABLES_CHAINS.ingress, 'ingress'],
      [IPTABLES_CHAINS.egress, 'egress'],
    ] as const) {
      const expected = ([4, 6] as const).flatMap((family) =>
        layoutPolicy(policy, family, Infinity)
          .entries.filter((e) => e.rule.direction === direction)
          .map((e) => ({ family, entry: e })),
      );
      const actual = chainRules(text, chain);
      expect(actual).toHaveLength(expected.length);
      actual.forEach((l, i) => {
        const { family, entry } = expected[i];
        if (entry.kind !== 'address') throw new Error('linear form has no sets');
        expect(l.endsWith(` accept comment "${commentText(provenanceComment(entry.rule.because), NFT_COMMENT_MAX)}"`)).toBe(true);
        const side = direction === 'ingress' ? 'saddr' : 'daddr';
        if (entry.cidr.isAny) expect(l.startsWith(`meta nfproto ipv${family} `)).toBe(true);
        else expect(l.startsWith(`${family === 4 ? 'ip' : 'ip6'} ${side} ${entry.cidr.text.replace(/\/(32|128)$/, '')} `)).toBe(true);
      });
    }
  });

  it.each(CASES)('%s: as many policy entries per family as the iptables wall has lines, with or without sets', (_n, make) => {
    const policy = make();
    for (const threshold of [Infinity, DEFAULT_IPSET_THRESHOLD, 1]) {
      const text = renderNftables(policy, { ipsetThreshold: threshold }).text;
      const ipt = renderIptables(policy, { ipsetThreshold: threshold });
      const entries = [...chainRules(text, IPTABLES_CHAINS.ingress), ...chainRules(text, IPTABLES_CHAINS.egress)];
      const v4 = entries.filter((l) => /^(ip |meta nfproto ipv4 )/.test(l));
      const v6 = entries.filter((l) => /^(ip6 |meta nfproto ipv6 )/.test(l));
      expect(v4.length + v6.length).toBe(entries.length);
      const count = (t: string) => lines(t).filter((l) => /^-A tw-(in|out) /.test(l)).length;
      expect({ threshold, v4: v4.length, v6: v6.length }).toEqual({ threshold, v4: count(ipt.v4), v6: count(ipt.v6) });
      expect(declared(text, 'set').filter((s) => /^tw[46]-/.test(s))).toEqual([...(ipt.ipsets ?? '').matchAll(/^create (\S+)/gm)].map((m) => m[1]));
    }
  });

  it.each(CASES)('%s: same policy, same bytes', (_n, make) => {
    expect(renderNftables(make()).text).toBe(renderNftables(make()).text);
  });
});

describe('renderNftables: the set form admits what the linear form admits', () => {
  /** Policy lines as "match @ address", a set match expanded to its elements' addresses. */
  function expand(text: string): string[] {
    const elements = new Map<string, string[]>();
    for (const m of text.matchAll(/^\tset (\S+) \{\n\t\ttype \S+\n\t\tflags interval\n\t\telements = \{\n((?:\t\t\t\S+,\n)*)\t\t\}/gm)) {
      elements.set(m[1], m[2].split('\n').filter((x) => x !== '').map((x) => x.trim().replace(/,$/, '')));
    }
    return [...chainRules(text, IPTABLES_CHAINS.ingress), ...chainRules(text, IPTABLES_CHAINS.egress)]
      .flatMap((l) => {
        const match = l.replace(/ comment "[^"]*"$/, '');
        const set = /^(ip6?) [sd]addr @(\S+) /.exec(match);
        if (set !== null) return (elements.get(set[2]) ?? []).map((a) => `${match.replace(` @${set[2]}`, '')} @ ${a}`);
        const addr = /^(ip6?) [sd]addr (\S+) /.exec(match);
        return [addr === null ? `${match} @ any` : `${match.replace(` ${addr[2]}`, '')} @ ${addr[2]}`];
      })
      .sort();
  }

  it.each(Object.keys(ALL))('%s, with every address set as an interval set', (name) => {
    const policy = ALL[name]();
    const linear = expand(renderNftables(policy, { ipsetThreshold: Infinity }).text);
    const sets = expand(renderNftables(policy, { ipsetThreshold: 1 }).text);
    // The sets hold the minimal cover of their addresses; here no two CIDRs of a set touch, so
    // the cover is the CIDRs themselves (the merging case has its own test below).
    expect(sets).toEqual(linear);
  });

  it('a set holds the minimal cover of its addresses: overlapping and adjacent CIDRs merge (an interval set refuses overlaps)', () => {
    const app = Peer.securityGroup('sg-0123456789abcdef0', { hostCidrs: ['10.0.2.0/25'], label: 'app tier' });
    const p = HostPolicy.compose('merge', [
      customRole('calls', [
        Flow.egress(Port.tcp(443), app, 'inside the /24 below'),
        Flow.egress(Port.tcp(443), Peer.ipv4('10.0.2.0/24'), 'app network'),
        Flow.egress(Port.tcp(443), Peer.ipv4('10.0.3.0/24'), 'next door'),
        Flow.egress(Port.tcp(443), Peer.ipv4('192.0.2.1/32'), 'one host'),
      ]),
    ]);
    const text = renderNftables(p, { ipsetThreshold: 1 }).text;
    expect(text).toContain('\tset tw4-out-tcp-443 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = {\n\t\t\t10.0.2.0/23,\n\t\t\t192.0.2.1,\n\t\t}\n\t}\n');
    expect(chainRules(text, IPTABLES_CHAINS.egress)).toEqual([expect.stringMatching(/^ip daddr @tw4-out-tcp-443 tcp dport 443 ct state new accept comment ".*\(set tw4-out-tcp-443, 2 CIDRs\)"$/)]);
  });
});

describe('renderNftables: the always-present rules', () => {
  const text = renderNftables(sampleServer()).text;
  const input = chainRules(text, 'input');
  const output = chainRules(text, 'output');
  const at = (rules: string[], re: RegExp): number => rules.findIndex((l) => re.test(l));

  it('accepts loopback first, in and out', () => {
    expect(input[0]).toBe('iifname "lo" accept comment "twinwall: loopback"');
    expect(output[0]).toBe('oifname "lo" accept comment "twinwall: loopback"');
  });

  it('accepts replies both ways and sends INVALID to the log-and-drop chains', () => {
    expect(input).toContainEqual(expect.stringMatching(/^ct state established,related accept /));
    expect(output).toContainEqual(expect.stringMatching(/^ct state established,related accept /));
    expect(input).toContainEqual(expect.stringMatching(/^ct state invalid jump tw-in-invalid /));
    expect(output).toContainEqual(expect.stringMatching(/^ct state invalid jump tw-out-invalid /));
  });

  it('keeps DHCP and DHCPv6 working, each for its own family only, and sends DHCP only to where a server can be', () => {
    expect(input).toContainEqual(expect.stringMatching(/^meta nfproto ipv4 udp sport 67 udp dport 68 accept /));
    expect(input).toContainEqual(expect.stringMatching(/^ip6 daddr fe80::\/10 udp sport 547 udp dport 546 accept /));
    expect(output.filter((l) => / udp sport (68|546) udp dport (67|547) accept /.test(l) && !l.startsWith('ip saddr 0.0.0.0 ')).map((l) => l.replace(/ udp sport.*/, ''))).toEqual([
      'ip daddr 255.255.255.255',
      'ip6 daddr ff02::1:2',
      'ip6 daddr fe80::/10',
    ]);
  });

  it('with a declared subnet, DHCP may also reach that subnet\'s router (base + 1)', () => {
    const p = HostPolicy.compose('dhcp', [ntpClient()], { subnets: ['10.0.1.0/24'] });
    expect(chainRules(renderNftables(p).text, 'output')).toContainEqual(expect.stringMatching(/^ip daddr 10\.0\.1\.1 udp sport 68 udp dport 67 accept /));
  });

  it('a host is not a router: router advertisements, redirects (IPv6) and ICMP redirects out go to the egress log-and-drop chain first', () => {
    const spoof = at(output, /^ip saddr 0\.0\.0\.0 /);
    for (const match of [/^icmp type 5 jump tw-out-drop /, /^icmpv6 type 134 jump tw-out-drop /, /^icmpv6 type 137 jump tw-out-drop /]) {
      expect(at(output, match)).toBeGreaterThan(0);
      expect(at(output, match)).toBeLessThan(spoof);
    }
  });

  it('drops loopback-range sources leaving by a real interface as forged', () => {
    const spoof = at(output, /^fib saddr type != local /);
    expect(at(output, /^ip saddr 127\.0\.0\.0\/8 jump tw-out-spoof /)).toBeLessThan(spoof);
    expect(at(output, /^ip6 saddr ::1 jump tw-out-spoof /)).toBeLessThan(spoof);
    expect(at(output, /^ip6 saddr ::1 jump tw-out-spoof /)).toBeGreaterThan(at(output, /^oifname "lo" accept /));
  });

  it('accepts neighbour discovery (in 133-137, out 133, 135, 136; hop limit 255) and packet-too-big before the INVALID drop', () => {
    for (const [rules, types] of [[input, [133, 134, 135, 136, 137]], [output, [133, 135, 136]]] as const) {
      const invalid = at(rules, /^ct state invalid /);
      for (const type of types) {
        const nd = at(rules, new RegExp(`^icmpv6 type ${type} ip6 hoplimit 255 accept `));
        expect(nd).toBeGreaterThanOrEqual(0);
        expect(nd).toBeLessThan(invalid);
      }
    }
    expect(at(input, /^icmpv6 type 2 accept /)).toBeLessThan(at(input, /^ct state invalid /));
  });

  it('drops forged sources (fib saddr type != local) after the unspecified-source exceptions and before anything that accepts', () => {
    const spoof = at(output, /^fib saddr type != local jump tw-out-spoof /);
    expect(spoof).toBeGreaterThan(at(output, /^ip saddr 0\.0\.0\.0 ip daddr 255\.255\.255\.255 udp sport 68 udp dport 67 accept /));
    expect(spoof).toBeGreaterThan(at(output, /^ip6 saddr :: ip6 daddr ff02::1:ff00:0\/104 icmpv6 type 135 ip6 hoplimit 255 accept /));
    expect(spoof).toBeLessThan(at(output, /^ct state established,related /));
    expect(spoof).toBeLessThan(at(output, /^jump tw-out /));
  });

  it('renders the sample server\'s policy exactly', () => {
    expect(chainRules(text, 'tw-in').map((l) => l.replace(/ comment .*/, ''))).toEqual([
      'ip saddr 192.0.2.0/24 tcp dport 22 ct state new accept',
      'meta nfproto ipv4 tcp dport 25 ct state new accept',
      'meta nfproto ipv4 tcp dport 80 ct state new accept',
      'meta nfproto ipv4 tcp dport 443 ct state new accept',
      'ip6 saddr 2001:db8:a::/48 tcp dport 22 ct state new accept',
      'meta nfproto ipv6 tcp dport 25 ct state new accept',
      'meta nfproto ipv6 tcp dport 80 ct state new accept',
      'meta nfproto ipv6 tcp dport 443 ct state new accept',
    ]);
    expect(chainRules(text, 'tw-out').map((l) => l.replace(/ comment .*/, ''))).toEqual([
      'meta nfproto ipv4 tcp dport 25 ct state new accept',
      'ip daddr 198.51.100.53 tcp dport 53 ct state new accept',
      'ip daddr 198.51.100.54 tcp dport 53 ct state new accept',
      'ip daddr 198.51.100.53 udp dport 53 ct state new accept',
      'ip daddr 198.51.100.54 udp dport 53 ct state new accept',
      'meta nfproto ipv6 tcp dport 25 ct state new accept',
    ]);
  });
});

describe('renderNftables: the policy shapes', () => {
  const text = renderNftables(edgePolicy()).text;
  const out = chainRules(text, 'tw-out');
  const inn = chainRules(text, 'tw-in');

  it('writes all-protocol rules without a protocol, full port ranges as meta l4proto, ranges with a dash', () => {
    expect(out).toContainEqual('ip daddr 10.2.0.0/16 accept comment "edgeCases: backups: everything to the backup network"');
    expect(out).toContainEqual(expect.stringMatching(/^ip daddr 10\.4\.0\.0\/16 meta l4proto tcp ct state new accept /));
    expect(out).toContainEqual(expect.stringMatching(/^ip daddr 10\.0\.2\.0\/24 tcp dport 8000-8999 ct state new accept /));
    expect(out).toContainEqual(expect.stringMatching(/^ip6 daddr 2001:db8:2::\/64 tcp dport 8000-8999 ct state new accept /));
    expect(out).toContainEqual(expect.stringMatching(/^ip6 daddr 2001:db8:5::\/48 meta l4proto udp ct state new accept /));
  });

  it('writes ICMP types and type/code per family; ICMP only for IPv4 addresses, ICMPv6 only for IPv6', () => {
    expect(inn).toContainEqual(expect.stringMatching(/^ip saddr 10\.0\.2\.0\/24 icmp type 8 accept /));
    expect(inn).toContainEqual(expect.stringMatching(/^ip saddr 10\.9\.0\.0\/16 icmp type 3 icmp code 4 accept /));
    expect(inn).toContainEqual(expect.stringMatching(/^ip6 saddr 2001:db8:2::\/64 icmpv6 type 128 accept /));
    expect(inn.filter((l) => l.includes('icmpv6'))).toEqual([expect.stringMatching(/^ip6 /)]);
    expect(inn.filter((l) => / icmp type/.test(l)).every((l) => l.startsWith('ip '))).toBe(true);
  });

  it('makes awkward reasons safe, and cuts long ones to nftables\' 128 bytes', () => {
    expect(text).toContain('comment "edgeCases: the app tier\'s \'admin\' ports / legacy, see ticket #42 ... ?n?code"');
    const long = comments(text).find((c) => c.includes('xxxx')) as string;
    expect(long).toHaveLength(NFT_COMMENT_MAX);
    expect(long.endsWith('...')).toBe(true);
  });

  it('writes iptables rates the way nftables does, and refuses a rate it cannot read', () => {
    expect(nftRate('10/min')).toBe('10/minute');
    expect(nftRate('2/s')).toBe('2/second');
    expect(nftRate('1/day')).toBe('1/day');
    expect(() => nftRate('10 per minute')).toThrow(RangeError);
    expect(() => nftRate('10/fortnight')).toThrow(RangeError);
  });
});

describe('renderNftables: instance metadata', () => {
  const imds = (text: string): string[] => chainRules(text, 'output').filter((l) => /169\.254\.169\.254|fd00:ec2::254/.test(l));

  it('root-only (the default): root may connect to tcp/80 (meta skuid 0), everyone else is logged and dropped, both families', () => {
    const text = renderNftables(HostPolicy.compose('h', [ntpClient()])).text;
    expect(imds(text).map((l) => l.replace(/ comment .*/, ''))).toEqual([
      'ip daddr 169.254.169.254 tcp dport 80 meta skuid 0 ct state new accept',
      'ip daddr 169.254.169.254 jump tw-out-imds',
      'ip6 daddr fd00:ec2::254 tcp dport 80 meta skuid 0 ct state new accept',
      'ip6 daddr fd00:ec2::254 jump tw-out-imds',
    ]);
    expect(chainRules(text, 'tw-out-imds')).toEqual(['limit rate 10/minute burst 20 packets log prefix "twinwall egress drop imds: " flags skuid', 'drop']);
  });

  it('all-users: anyone may connect to tcp/80, and there is no metadata chain', () => {
    const text = renderNftables(ROLE_FIXTURES.metadataAllUsers()).text;
    expect(imds(text).map((l) => l.replace(/ comment .*/, ''))).toEqual(['ip daddr 169.254.169.254 tcp dport 80 ct state new accept', 'ip6 daddr fd00:ec2::254 tcp dport 80 ct state new accept']);
    expect(text).not.toContain('skuid 0');
    expect(text).not.toContain('tw-out-imds');
  });

  it('none: nothing reaches it', () => {
    const text = renderNftables(ROLE_FIXTURES.metadataNone()).text;
    expect(imds(text).map((l) => l.replace(/ comment .*/, ''))).toEqual(['ip daddr 169.254.169.254 jump tw-out-imds', 'ip6 daddr fd00:ec2::254 jump tw-out-imds']);
  });

  it('decided before the policy, so a role opening tcp/80 to 0.0.0.0/0 cannot reach it', () => {
    const p = HostPolicy.compose('h', [customRole('fetcher', [Flow.egress(Port.tcp(80), Peer.anyIpv4(), 'fetch feeds')])]);
    const output = chainRules(renderNftables(p).text, 'output');
    expect(output.findIndex((l) => l.startsWith('ip daddr 169.254.169.254 jump tw-out-imds'))).toBeLessThan(output.findIndex((l) => l.startsWith('jump tw-out ')));
  });
});

describe('renderNftables: audit mode', () => {
  const enforce = renderNftables(sampleServer()).text;
  const audit = renderNftables(sampleServer({ audit: true })).text;

  it('drops nothing: no drop statement, every log-and-drop chain ends in accept; only the base chains\' policies say drop', () => {
    expect(lines(audit).filter((l) => / drop;?$/.test(l) || l.trim() === 'drop')).toEqual([
      '\t\ttype filter hook input priority filter; policy drop;',
      '\t\ttype filter hook forward priority filter; policy drop;',
      '\t\ttype filter hook output priority filter; policy drop;',
    ]);
    expect(audit).toContain('# AUDIT MODE');
    expect(enforce).not.toContain('AUDIT');
  });

  it('the same base and policy chains in the same order; only the log-and-drop chains differ, and no set is needed', () => {
    const strip = (t: string): string[] => {
      const kept: string[] = [];
      for (const chain of ['input', 'forward', 'output', 'tw-in', 'tw-out']) kept.push(chain, ...chainRules(t, chain));
      return kept;
    };
    expect(strip(audit)).toEqual(strip(enforce));
    // The connection's conntrack mark remembers it was logged: no table of its own that could fill.
    expect(declared(enforce, 'set')).toEqual([]);
    expect(declared(audit, 'set')).toEqual([]);
  });
});

describe('address sets above the threshold become nftables interval sets, exactly where the iptables wall uses ipsets', () => {
  const admins = (n: number) =>
    HostPolicy.compose('jump', [customRole('admins', Array.from({ length: n }, (_, i) => Flow.ingress(Port.tcp(22), Peer.ipv4(`198.51.100.${2 * i + 1}/32`), 'admin host')))]);

  it(`the threshold is ${DEFAULT_IPSET_THRESHOLD}: that many CIDRs stay linear, one more is a set`, () => {
    const at = renderNftables(admins(DEFAULT_IPSET_THRESHOLD)).text;
    expect(declared(at, 'set')).toEqual([]);
    expect(chainRules(at, 'tw-in')).toHaveLength(DEFAULT_IPSET_THRESHOLD);
    const over = renderNftables(admins(DEFAULT_IPSET_THRESHOLD + 1)).text;
    expect(chainRules(over, 'tw-in')).toEqual(['ip saddr @tw4-in-tcp-22 tcp dport 22 ct state new accept comment "admins: admin host (set tw4-in-tcp-22, 17 CIDRs)"']);
    expect(over).toContain(
      ['\tset tw4-in-tcp-22 {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t\telements = {', ...Array.from({ length: 17 }, (_, i) => `\t\t\t198.51.100.${2 * i + 1},`), '\t\t}', '\t}', ''].join('\n'),
    );
  });

  it('takes the same option as the ipset form, and refuses the same bad values', () => {
    expect(declared(renderNftables(admins(3), { ipsetThreshold: 2 }).text, 'set')).toEqual(['tw4-in-tcp-22']);
    expect(declared(renderNftables(admins(100), { ipsetThreshold: Infinity }).text, 'set')).toEqual([]);
    for (const bad of [0, 2.5, NaN, -1]) expect(caught(() => renderNftables(admins(3), { ipsetThreshold: bad })).message).toContain('TW161 OPTION_INVALID at jump: ipsetThreshold');
  });
});

describe('hostFirewall: the host wall\'s backend, per host', () => {
  const policy = sampleServer();

  it('defaults to nftables', () => {
    expect(DEFAULT_HOST_FIREWALL).toBe('nftables');
    expect(renderHostWall(policy)).toEqual({ backend: 'nftables', nftables: renderNftables(policy) });
    const many = ROLE_FIXTURES.manyAdmins();
    expect(renderHostWall(many, { ipsetThreshold: Infinity })).toEqual({ backend: 'nftables', nftables: renderNftables(many, { ipsetThreshold: Infinity }) });
  });

  it('selects either backend, with the same address-set threshold', () => {
    expect(renderHostWall(policy, { hostFirewall: 'nftables' })).toEqual({ backend: 'nftables', nftables: renderNftables(policy) });
    expect(renderHostWall(policy, { hostFirewall: 'iptables' })).toEqual({ backend: 'iptables', iptables: renderIptables(policy) });
    const many = ROLE_FIXTURES.manyAdmins();
    expect(renderHostWall(many, { hostFirewall: 'nftables', ipsetThreshold: Infinity })).toEqual({ backend: 'nftables', nftables: renderNftables(many, { ipsetThreshold: Infinity }) });
    expect(renderHostWall(many, { hostFirewall: 'iptables', ipsetThreshold: Infinity })).toEqual({ backend: 'iptables', iptables: renderIptables(many, { ipsetThreshold: Infinity }) });
  });

  it('refuses an unknown backend, naming the choices', () => {
    const message = caught(() => renderHostWall(policy, { hostFirewall: 'pf' as never })).message;
    expect(message).toContain('TW161 OPTION_INVALID at sample: hostFirewall "pf" is not a host-wall backend.');
    expect(message).toContain("'iptables', 'nftables'");
    expect(message).toContain("leave it out (default 'nftables')");
  });

  it('renderHost ships the backend the host chose: the nftables wall and its fallback in the user-data, or the iptables tables', () => {
    const nftHost = renderHost(policy, { hostFirewall: 'nftables' });
    expect(nftHost.hostFirewall).toBe('nftables');
    expect(nftHost.nftables).toEqual(renderNftables(policy));
    expect(nftHost.fallback).toBeUndefined();
    expect(nftHost.userData.cloudConfig).toContain('/etc/twinwall/twinwall.nft');
    expect(nftHost.userData.cloudConfig).not.toContain('/etc/iptables/rules.v4');
    const iptHost = renderHost(policy, { hostFirewall: 'iptables' });
    expect(iptHost.hostFirewall).toBe('iptables');
    expect(iptHost.iptables).toEqual(renderIptables(policy));
    expect(iptHost.nftables).toBeUndefined();
    const byDefault = renderHost(policy);
    expect(byDefault.hostFirewall).toBe('nftables');
    expect(byDefault.userData).toEqual(nftHost.userData);
  });
});

/** Runs `nft` in a namespace of its own, so a check can never touch the machine's ruleset. */
function inNamespace<T>(tag: string, fn: (run: (argv: string[], input?: string) => string) => T): T {
  const ns = `twnftc${process.pid}${tag}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    return fn((argv, input) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }));
  } finally {
    execFileSync('ip', ['netns', 'delete', ns]);
  }
}

describeTier('nft -c', [root, onPath('ip'), onPath('nft'), netns, nft], () => {
  const forms = CASES.flatMap(([name, make]) => [
    [`${name}`, make, DEFAULT_IPSET_THRESHOLD] as const,
    [`${name}, every address set a set`, make, 1] as const,
  ]);

  it.each(forms)('%s: nft -c -f accepts it', (_n, make, threshold) => {
    const text = renderNftables(make(), { ipsetThreshold: threshold }).text;
    // -c parses the file and checks the whole transaction against the kernel without committing it.
    inNamespace('c', (run) => expect(() => run(['nft', '-c', '-f', '-'], text)).not.toThrow());
  });

  it('rejects a broken file (the check is not vacuous)', () => {
    const broken = renderNftables(sampleServer()).text.replace('ct state new', 'ct state newish');
    inNamespace('b', (run) => expect(() => run(['nft', '-c', '-f', '-'], broken)).toThrow(/newish/));
  });

  it('loads, and loads again over itself (a reload), leaving one table whose chains carry every rule', () => {
    const text = renderNftables(ROLE_FIXTURES.manyAdmins()).text;
    inNamespace('l', (run) => {
      run(['nft', '-f', '-'], text);
      run(['nft', '-f', '-'], text);
      expect(run(['nft', 'list', 'tables'])).toBe('table inet twinwall\n');
      const live = run(['nft', 'list', 'ruleset']);
      expect(live.match(/^\t\t[a-z@].* (accept|drop|jump \S+)( comment "[^"]*")?$/gm)?.length).toBe(
        lines(text).filter((l) => /^\t\t[a-z@]/.test(l) && / (accept|drop|jump \S+)( comment "[^"]*")?$/.test(l)).length,
      );
      expect(live).toContain('ip saddr @tw4-in-tcp-22 tcp dport 22 ct state new accept');
    });
  });
});
