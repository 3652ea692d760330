/**
 * The host wall renderer: golden files for every role fixture, the properties every rendered
 * ruleset must have, and (tier "iptables-restore") the real parser's verdict on each of them.
 */
import { provenanceComment } from '../lib/provenance';
import { execFileSync } from 'child_process';
import fc from 'fast-check';
import { Flow, HostPolicy, Peer, Port, customRole, mailServer, ntpClient, sshAdmin, webServer } from '../lib';
import {
  AUDIT_LOGGED_MARK,
  COMMENT_MAX,
  DEFAULT_IPSET_THRESHOLD,
  FALLBACK_MATCHES,
  IPTABLES_CHAINS,
  LOG_PREFIX_MAX,
  commentText,
  logPrefix,
  renderFallback,
  renderIptables,
} from '../lib/render/iptables';
import { expectGolden } from './support/golden';
import { ADMIN_LAN, ROLE_FIXTURES, edgePolicy, sampleServer } from './support/fixtures';
import { caught } from './support/caught';
import { describeTier, ipset, netns, onPath, root } from './support/tiers';

const caughtMessage = (fn: () => unknown): string => caught(fn).message;

const FAMILIES = ['v4', 'v6'] as const;

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

function chainLines(text: string, chain: string): string[] {
  return lines(text).filter((l) => l.startsWith(`-A ${chain} `));
}

function comments(text: string): string[] {
  return [...text.matchAll(/--comment "([^"]*)"/g)].map((m) => m[1]);
}

const ALL: Record<string, () => HostPolicy> = { ...ROLE_FIXTURES, edge: () => edgePolicy(), edgeAudit: () => edgePolicy({ audit: true }) };

describe('renderIptables golden files', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    const rules = renderIptables(ROLE_FIXTURES[name]());
    expectGolden(`iptables/${name}.v4`, rules.v4);
    expectGolden(`iptables/${name}.v6`, rules.v6);
  });
});

describe('renderIptables: properties of every ruleset', () => {
  const cases = Object.entries(ALL).flatMap(([name, make]) => FAMILIES.map((f) => [`${name}.${f}`, make, f] as const));

  it.each(cases)('%s: DROP policies in the file, one filter table, COMMIT', (_n, make, f) => {
    const text = renderIptables(make())[f];
    const body = lines(text).filter((l) => !l.startsWith('#'));
    expect(body.slice(0, 4)).toEqual(['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]']);
    expect(body[body.length - 1]).toBe('COMMIT');
    expect(text.endsWith('COMMIT\n')).toBe(true);
    expect(body.filter((l) => l.startsWith('*'))).toEqual(['*filter']);
  });

  it.each(cases)('%s: names no interface but lo', (_n, make, f) => {
    const text = renderIptables(make())[f];
    const interfaces = [...text.matchAll(/ -([io]) (\S+)/g)].map((m) => m[2]);
    expect(interfaces.length).toBeGreaterThan(0);
    expect(new Set(interfaces)).toEqual(new Set(['lo']));
  });

  it.each(cases)('%s: every chain referenced is declared, every declared chain is used', (_n, make, f) => {
    const text = renderIptables(make())[f];
    const declared = lines(text)
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1).split(' ')[0]);
    const jumped = new Set([...text.matchAll(/-j (tw-\S+)/g)].map((m) => m[1]));
    expect(new Set(declared.filter((c) => c.startsWith('tw-')))).toEqual(jumped);
  });

  it.each(cases)('%s: comments are quoted safely and fit; LOG prefixes fit and name a direction', (_n, make, f) => {
    const text = renderIptables(make())[f];
    for (const l of lines(text).filter((x) => x.includes('--comment'))) expect(l).toMatch(/--comment "[ !#-[\]-~]*" /);
    for (const c of comments(text)) expect(Buffer.byteLength(c)).toBeLessThanOrEqual(COMMENT_MAX);
    const prefixes = [...text.matchAll(/--log-prefix "([^"]*)"/g)].map((m) => m[1]);
    expect(prefixes.length).toBeGreaterThanOrEqual(6);
    for (const p of prefixes) {
      expect(p.length).toBeLessThanOrEqual(LOG_PREFIX_MAX);
      expect(p).toMatch(/^twinwall (ingress|egress|forward) (drop|audit)( inv| spoof| imds)?: $/);
    }
  });

  it.each(cases)('%s: every LOG is limited (enforcing: by rate; audit: once per connection) and comes right before its chain\'s verdict; nothing can refuse a packet in audit mode', (_n, make, f) => {
    const policy = make();
    const text = renderIptables(policy)[f];
    const verdictChains = Object.values(IPTABLES_CHAINS).filter((c) => c !== IPTABLES_CHAINS.ingress && c !== IPTABLES_CHAINS.egress);
    for (const chain of verdictChains) {
      const body = chainLines(text, chain);
      if (body.length === 0) continue; // tw-out-imds exists only when metadata access is narrowed
      if (!policy.options.audit) {
        // Enforcing: one limit per chain, so an attack cannot fill the disk.
        expect(body).toHaveLength(2);
        expect(body[0]).toMatch(/ -m limit --limit \S+ --limit-burst \d+ -j LOG --log-prefix /);
        expect(body[1]).toBe(`-A ${chain} -j DROP`);
        continue;
      }
      // Audit: each connection logged once (its conntrack mark remembers), so `twinwall learn`
      // sees every distinct flow; untracked packets by rate; no hashlimit (a full table drops).
      expect(body).toHaveLength(4);
      expect(body[0]).toMatch(new RegExp(`^-A ${chain} -m connmark --mark 0x0/${AUDIT_LOGGED_MARK} -j LOG --log-prefix `));
      expect(body[1]).toMatch(new RegExp(`^-A ${chain} -m conntrack --ctstate INVALID,UNTRACKED -m limit --limit \\S+ --limit-burst \\d+ -j LOG --log-prefix `));
      expect(body[2]).toBe(`-A ${chain} -j CONNMARK --set-xmark ${AUDIT_LOGGED_MARK}/${AUDIT_LOGGED_MARK}`);
      expect(body[3]).toBe(`-A ${chain} -j ACCEPT`);
      expect(text).not.toContain('hashlimit');
    }
  });

  it.each(cases)('%s: linear form: one commented ACCEPT per policy rule and host CIDR of the family, in policy order', (_n, make, f) => {
    const policy = make();
    const family = f === 'v4' ? 4 : 6;
    const text = renderIptables(policy, { ipsetThreshold: Infinity })[f];
    const expected = policy.rules.flatMap((rule) => {
      const otherIcmp = (rule.port.protocol === 'icmp' && family === 6) || (rule.port.protocol === 'icmpv6' && family === 4);
      if (otherIcmp) return [];
      const chain = rule.direction === 'ingress' ? IPTABLES_CHAINS.ingress : IPTABLES_CHAINS.egress;
      return rule.hostCidrs.filter((c) => c.family === family).map((c) => ({ chain, cidr: c, comment: commentText(provenanceComment(rule.because)) }));
    });
    const actual = lines(text).filter((l) => l.startsWith(`-A ${IPTABLES_CHAINS.ingress} `) || l.startsWith(`-A ${IPTABLES_CHAINS.egress} `));
    expect(actual).toHaveLength(expected.length);
    actual.forEach((l, i) => {
      const e = expected[i];
      expect(l.startsWith(`-A ${e.chain} `)).toBe(true);
      expect(l.endsWith(` -m comment --comment "${e.comment}" -j ACCEPT`)).toBe(true);
      if (e.cidr.isAny) expect(l).not.toMatch(/ -[sd] /);
      else expect(l).toContain(`${e.chain === IPTABLES_CHAINS.ingress ? '-s' : '-d'} ${e.cidr.text} `);
    });
    // Each comment names the role and (for catalog flows) the service.
    for (const rule of policy.rules) {
      for (const p of rule.because) expect(provenanceComment(rule.because)).toContain(p.service === undefined ? `${p.role}: ` : `${p.role}/${p.service}: `);
    }
  });

  it.each(cases)('%s: same policy, same bytes', (_n, make, f) => {
    expect(renderIptables(make())[f]).toBe(renderIptables(make())[f]);
  });
});

describe('renderIptables: the set form admits what the linear form admits', () => {
  /** Policy lines as (chain, address, rest of the match) triples, a `-m set` line expanded to its members. */
  function expand(text: string, sets: string | undefined): string[] {
    const members = new Map<string, string[]>();
    for (const m of (sets ?? '').matchAll(/^add (\S+) (\S+)$/gm)) members.set(m[1], [...(members.get(m[1]) ?? []), m[2]]);
    return lines(text)
      .filter((l) => l.startsWith(`-A ${IPTABLES_CHAINS.ingress} `) || l.startsWith(`-A ${IPTABLES_CHAINS.egress} `))
      .flatMap((l) => {
        const match = l.replace(/ -m comment --comment "[^"]*"/, '');
        const set = / -m set --match-set (\S+) (?:src|dst)/.exec(match);
        if (set !== null) return (members.get(set[1]) ?? []).map((c) => `${match.replace(set[0], '')} @ ${c}`);
        const addr = / -[sd] (\S+)/.exec(match);
        return [addr === null ? `${match} @ any` : `${match.replace(addr[0], '')} @ ${addr[1]}`];
      })
      .sort();
  }

  it.each(Object.keys(ALL).flatMap((name) => FAMILIES.map((f) => [name, f] as const)))('%s.%s, with every address set as an ipset', (name, f) => {
    const policy = ALL[name]();
    const linear = renderIptables(policy, { ipsetThreshold: Infinity });
    const sets = renderIptables(policy, { ipsetThreshold: 1 });
    expect(expand(sets[f], sets.ipsets)).toEqual(expand(linear[f], undefined));
  });
});

describe('renderIptables: the always-present rules', () => {
  const { v4, v6 } = renderIptables(sampleServer());
  const index = (text: string, needle: string | RegExp): number => lines(text).findIndex((l) => (typeof needle === 'string' ? l.includes(needle) : needle.test(l)));

  it('accepts loopback first, in and out', () => {
    for (const t of [v4, v6]) {
      expect(chainLines(t, 'INPUT')[0]).toMatch(/^-A INPUT -i lo .* -j ACCEPT$/);
      expect(chainLines(t, 'OUTPUT')[0]).toMatch(/^-A OUTPUT -o lo .* -j ACCEPT$/);
    }
  });

  it('accepts replies both ways and sends INVALID to a log-and-drop chain', () => {
    for (const t of [v4, v6]) {
      for (const chain of ['INPUT', 'OUTPUT']) {
        expect(chainLines(t, chain).some((l) => /--ctstate RELATED,ESTABLISHED .* -j ACCEPT$/.test(l))).toBe(true);
        const invalid = chainLines(t, chain).find((l) => l.includes('--ctstate INVALID'));
        expect(invalid).toMatch(chain === 'INPUT' ? / -j tw-in-invalid$/ : / -j tw-out-invalid$/);
      }
    }
  });

  it('keeps DHCP (v4: udp 68<->67) and DHCPv6 (udp 546<->547) working, sending only where a DHCP server can be', () => {
    const out = (t: string, sport: number): string[] => chainLines(t, 'OUTPUT').filter((l) => l.includes(`-p udp -m udp --sport ${sport} --dport ${sport - 1}`));
    expect(chainLines(v4, 'INPUT').some((l) => l.includes('-p udp -m udp --sport 67 --dport 68') && l.endsWith('-j ACCEPT'))).toBe(true);
    expect(chainLines(v6, 'INPUT').some((l) => l.includes('-d fe80::/10 -p udp -m udp --sport 547 --dport 546') && l.endsWith('-j ACCEPT'))).toBe(true);
    // No subnet declared: broadcast only (the DHCPDISCOVER from 0.0.0.0, and any later broadcast).
    expect(out(v4, 68).map((l) => /-s (\S+) /.exec(l)?.[1] ?? /-d (\S+) /.exec(l)?.[1])).toEqual(['0.0.0.0/32', '255.255.255.255/32']);
    expect(out(v4, 68).every((l) => l.includes('-d 255.255.255.255/32 ') && l.endsWith('-j ACCEPT'))).toBe(true);
    expect(chainLines(v6, 'OUTPUT').filter((l) => l.includes('--sport 546 --dport 547')).map((l) => /-d (\S+) /.exec(l)?.[1])).toEqual(['ff02::1:2/128', 'fe80::/10']);
    // A declared subnet adds its router (base + 1), in canonical order; nothing else.
    const routed = renderIptables(sampleServer({ subnets: ['10.0.3.0/28', '10.0.1.0/24', '10.0.1.0/24'] })).v4;
    expect(chainLines(routed, 'OUTPUT').filter((l) => l.includes('--sport 68 --dport 67') && !l.includes('-s 0.0.0.0')).map((l) => /-d (\S+) /.exec(l)?.[1])).toEqual([
      '255.255.255.255/32',
      '10.0.1.1/32',
      '10.0.3.1/32',
    ]);
    expect(routed).toContain('--comment "twinwall: DHCP client to the router of subnet 10.0.1.0/24 only, so leases renew"');
  });

  it('refuses a subnet that is not an IPv4 AWS subnet', () => {
    expect(caughtMessage(() => sampleServer({ subnets: ['10.0.0.0/8'] }))).toContain('TW161 OPTION_INVALID at sample: the subnet "10.0.0.0/8" is a /8, but an AWS subnet is a /16 to /28.');
    expect(caughtMessage(() => sampleServer({ subnets: ['10.0.1.5/24'] }))).toContain('TW102 CIDR_HOST_BITS');
    expect(caughtMessage(() => sampleServer({ subnets: ['2001:db8::/64'] }))).toContain('TW104 FAMILY_MISMATCH');
    expect(caughtMessage(() => sampleServer({ subnets: '10.0.1.0/24' as never }))).toContain('subnets "10.0.1.0/24" is not a list of IPv4 CIDRs');
  });

  it('accepts neighbour discovery (hop limit 255) before the INVALID drop: RS, RA, NS, NA and redirects in; RS, NS and NA out', () => {
    const expected: Record<string, number[]> = { INPUT: [133, 134, 135, 136, 137], OUTPUT: [133, 135, 136] };
    for (const chain of ['INPUT', 'OUTPUT']) {
      const body = chainLines(v6, chain);
      const invalid = body.findIndex((l) => l.includes('--ctstate INVALID'));
      const accepted = body.filter((l) => / --icmpv6-type 13\d -m hl --hl-eq 255 /.test(l) && !l.includes('-s ::/128') && l.endsWith('-j ACCEPT'));
      expect(accepted.map((l) => Number(/--icmpv6-type (\d+)/.exec(l)?.[1]))).toEqual(expected[chain]);
      for (const l of accepted) expect(body.indexOf(l)).toBeLessThan(invalid);
    }
    expect(v6).not.toContain('--icmp-type');
    expect(v4).not.toContain('icmpv6');
  });

  it('a host is not a router: router advertisements, redirects (IPv6) and ICMP redirects (IPv4) out go to the log-and-drop chain first', () => {
    const first = (t: string) => chainLines(t, 'OUTPUT').slice(1, 4);
    expect(first(v6).slice(0, 2)).toEqual([
      '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m comment --comment "twinwall: router advertisement out: a host is not a router" -j tw-out-drop',
      '-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type 137 -m comment --comment "twinwall: redirect out: a host is not a router" -j tw-out-drop',
    ]);
    expect(first(v4)[0]).toBe('-A OUTPUT -p icmp -m icmp --icmp-type 5 -m comment --comment "twinwall: ICMP redirect out: a host is not a router" -j tw-out-drop');
    // Before the replies rule: the kernel tracks a redirect about a forwarded packet as RELATED.
    for (const t of [v4, v6]) expect(index(t, 'a host is not a router')).toBeLessThan(index(t, /^-A OUTPUT .*--ctstate RELATED,ESTABLISHED/));
  });

  it('accepts packet-too-big and the other RFC 4890 errors inbound before the INVALID drop', () => {
    const ptb = index(v6, /^-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 2 .*-j ACCEPT$/);
    expect(ptb).toBeGreaterThanOrEqual(0);
    expect(ptb).toBeLessThan(index(v6, /^-A INPUT .*--ctstate INVALID/));
  });

  it('drops outbound packets with a foreign source, after the unspecified-source exceptions (DHCPDISCOVER, DAD)', () => {
    const spoof4 = index(v4, /^-A OUTPUT -m addrtype ! --src-type LOCAL .* -j tw-out-spoof$/);
    const spoof6 = index(v6, /^-A OUTPUT -m addrtype ! --src-type LOCAL .* -j tw-out-spoof$/);
    // A loopback-range source is LOCAL to addrtype, so it has its own rule (after `-o lo`).
    expect(index(v4, /^-A OUTPUT -s 127\.0\.0\.0\/8 .* -j tw-out-spoof$/)).toBe(spoof4 - 1);
    expect(index(v6, /^-A OUTPUT -s ::1\/128 .* -j tw-out-spoof$/)).toBe(spoof6 - 1);
    expect(index(v4, /^-A OUTPUT -o lo /)).toBeLessThan(spoof4 - 1);
    expect(spoof4).toBeGreaterThan(index(v4, '-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67'));
    const dad = index(v6, '-s ::/128 -d ff02::1:ff00:0/104 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255');
    expect(dad).toBeGreaterThanOrEqual(0);
    expect(spoof6).toBeGreaterThan(dad);
    // ... and before anything that accepts: replies, DHCP, metadata, the policy.
    expect(spoof4).toBeLessThan(index(v4, /^-A OUTPUT .*--ctstate RELATED,ESTABLISHED/));
    expect(spoof6).toBeLessThan(index(v6, /^-A OUTPUT .*--ctstate RELATED,ESTABLISHED/));
  });

  it('renders the sample server\'s policy lines exactly', () => {
    expect(chainLines(v4, 'tw-in')).toEqual([
      `-A tw-in -s ${ADMIN_LAN} -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "sshAdmin/ssh: administration from declared admin networks" -j ACCEPT`,
      '-A tw-in -p tcp -m tcp --dport 25 -m conntrack --ctstate NEW -m comment --comment "mailServer/smtp: receiving mail from other mail servers" -j ACCEPT',
      '-A tw-in -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW -m comment --comment "webServer/http: serving web pages" -j ACCEPT',
      '-A tw-in -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -m comment --comment "webServer/https: serving web pages over TLS" -j ACCEPT',
    ]);
    expect(chainLines(v4, 'tw-out').map((l) => l.replace(/ -m comment .*/, ''))).toEqual([
      '-A tw-out -p tcp -m tcp --dport 25 -m conntrack --ctstate NEW',
      '-A tw-out -d 198.51.100.53/32 -p tcp -m tcp --dport 53 -m conntrack --ctstate NEW',
      '-A tw-out -d 198.51.100.54/32 -p tcp -m tcp --dport 53 -m conntrack --ctstate NEW',
      '-A tw-out -d 198.51.100.53/32 -p udp -m udp --dport 53 -m conntrack --ctstate NEW',
      '-A tw-out -d 198.51.100.54/32 -p udp -m udp --dport 53 -m conntrack --ctstate NEW',
    ]);
    // No HTTP, FTP or udp/1434 out: only SMTP (any) and DNS (resolvers) leave.
    expect(v4).not.toMatch(/-A tw-out .*--dport (80|443|21|1434)\b/);
    expect(chainLines(v6, 'tw-out').map((l) => l.replace(/ -m comment .*/, ''))).toEqual(['-A tw-out -p tcp -m tcp --dport 25 -m conntrack --ctstate NEW']);
  });
});

describe('renderIptables: the policy shapes', () => {
  const { v4, v6 } = renderIptables(edgePolicy());

  it('writes all-protocol rules without -p, full port ranges without --dport, ranges with a colon', () => {
    expect(chainLines(v4, 'tw-out')).toContainEqual(expect.stringMatching(/^-A tw-out -d 10\.2\.0\.0\/16 -m comment --comment "edgeCases: backups: everything to the backup network" -j ACCEPT$/));
    expect(chainLines(v4, 'tw-out')).toContainEqual(expect.stringMatching(/^-A tw-out -d 10\.4\.0\.0\/16 -p tcp -m conntrack --ctstate NEW -m comment /));
    expect(chainLines(v4, 'tw-out')).toContainEqual(expect.stringMatching(/^-A tw-out -d 10\.0\.2\.0\/24 -p tcp -m tcp --dport 8000:8999 -m conntrack --ctstate NEW /));
    expect(chainLines(v6, 'tw-out')).toContainEqual(expect.stringMatching(/^-A tw-out -d 2001:db8:2::\/64 -p tcp -m tcp --dport 8000:8999 -m conntrack --ctstate NEW /));
  });

  it('writes ICMP types and type/code per family, and leaves each family\'s ICMP out of the other table', () => {
    expect(chainLines(v4, 'tw-in')).toContainEqual(expect.stringMatching(/^-A tw-in -s 10\.0\.2\.0\/24 -p icmp -m icmp --icmp-type 8 -m comment /));
    expect(chainLines(v4, 'tw-in')).toContainEqual(expect.stringMatching(/^-A tw-in -s 10\.9\.0\.0\/16 -p icmp -m icmp --icmp-type 3\/4 -m comment /));
    expect(chainLines(v6, 'tw-in')).toEqual([expect.stringMatching(/^-A tw-in -s 2001:db8:2::\/64 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m comment /)]);
    expect(chainLines(v4, 'tw-in').join('\n')).not.toContain('icmp6');
  });

  it('expands security groups and prefix lists to their declared host CIDRs', () => {
    expect(chainLines(v4, 'tw-out')).toContainEqual(expect.stringMatching(/^-A tw-out -d 198\.51\.100\.0\/25 -p tcp -m tcp --dport 443 .*"edgeCases: package updates"/));
    expect(v6).not.toContain('198.51.100.0/25');
  });

  it('makes awkward reasons safe: no double quotes or backslashes, ASCII only, at most 255 bytes', () => {
    expect(commentText('the app tier\'s "admin" ports \\ legacy … ünïcode')).toBe("the app tier's 'admin' ports / legacy ... ?n?code");
    const long = comments(v6).find((c) => c.includes('xxxx')) as string;
    expect(long).toHaveLength(COMMENT_MAX);
    expect(long.endsWith('...')).toBe(true);
    expect(commentText('a\n\tb')).toBe('a b');
  });

  it('writes every comment as the character-by-character rule does (the plain-text fast path included)', () => {
    // The rule commentText's doc states, one character at a time: typographic characters
    // transliterated, other printable ASCII kept, the rest "?", whitespace folded, cut to `max`.
    const TRANS: Record<string, string> = { '\u2026': '...', '\u2013': '-', '\u2014': '-', '\u2018': "'", '\u2019': "'", '\u201c': "'", '\u201d': "'", '\u2192': '->', '"': "'", '\\': '/' };
    const reference = (text: string, max: number): string => {
      let out = '';
      for (const ch of text.replace(/\s+/g, ' ').trim()) out += TRANS[ch] ?? (ch >= ' ' && ch <= '~' ? ch : '?');
      return out.length <= max ? out : `${out.slice(0, max - 3)}...`;
    };
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: fc.constantFrom('a', ' ', '"', '\\', '~', '\x7f', '\t', '\n', '\u2026', '\u00fc', '\u{1F600}', '!', '#', '[', ']'), maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 100 }),
    );
    fc.assert(fc.property(text, fc.constantFrom(COMMENT_MAX, 128, 10), (t, max) => commentText(t, max) === reference(t, max)), { numRuns: 2000 });
  });

  it('never builds a LOG prefix over 29 characters', () => {
    expect(logPrefix('egress', 'audit', 'spoof')).toBe('twinwall egress audit spoof: ');
    expect(logPrefix('egress', 'audit', 'spoof').length).toBeLessThanOrEqual(LOG_PREFIX_MAX);
  });

  it('orders rules by the policy, not by the order roles were given', () => {
    const a = HostPolicy.compose('h', [webServer(), mailServer(), sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })]);
    const b = HostPolicy.compose('h', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] }), mailServer(), webServer()]);
    expect(renderIptables(a)).toEqual(renderIptables(b));
  });
});

describe('renderIptables: instance metadata', () => {
  const imdsLines = (text: string): string[] => chainLines(text, 'OUTPUT').filter((l) => /169\.254\.169\.254|fd00:ec2::254/.test(l));
  // A role that opens tcp/80 to everywhere must still not reach the metadata service.
  const withHttpOut = (instanceMetadata: 'root-only' | 'all-users' | 'none') =>
    HostPolicy.compose('h', [customRole('fetcher', [Flow.egress(Port.tcp(80), Peer.anyIpv4(), 'fetch feeds')])], { instanceMetadata });

  it('root-only (the default): root may connect to tcp/80, everyone else is logged and dropped', () => {
    const { v4, v6 } = renderIptables(HostPolicy.compose('h', [ntpClient()]));
    expect(imdsLines(v4)).toEqual([
      expect.stringMatching(/^-A OUTPUT -d 169\.254\.169\.254\/32 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -m conntrack --ctstate NEW .* -j ACCEPT$/),
      expect.stringMatching(/^-A OUTPUT -d 169\.254\.169\.254\/32 .* -j tw-out-imds$/),
    ]);
    expect(imdsLines(v6)).toEqual([
      expect.stringMatching(/^-A OUTPUT -d fd00:ec2::254\/128 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 .* -j ACCEPT$/),
      expect.stringMatching(/^-A OUTPUT -d fd00:ec2::254\/128 .* -j tw-out-imds$/),
    ]);
    expect(chainLines(v4, 'tw-out-imds')).toEqual([expect.stringContaining('--log-prefix "twinwall egress drop imds: "'), '-A tw-out-imds -j DROP']);
  });

  it('all-users: anyone may connect to tcp/80, and there is no metadata drop chain', () => {
    const { v4 } = renderIptables(ROLE_FIXTURES.metadataAllUsers());
    expect(imdsLines(v4)).toEqual([expect.stringMatching(/^-A OUTPUT -d 169\.254\.169\.254\/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW .* -j ACCEPT$/)]);
    expect(v4).not.toContain('--uid-owner');
    expect(v4).not.toContain('tw-out-imds');
  });

  it('none: nothing reaches it', () => {
    const { v4, v6 } = renderIptables(ROLE_FIXTURES.metadataNone());
    expect(imdsLines(v4)).toEqual([expect.stringMatching(/^-A OUTPUT -d 169\.254\.169\.254\/32 .* -j tw-out-imds$/)]);
    expect(imdsLines(v6)).toEqual([expect.stringMatching(/^-A OUTPUT -d fd00:ec2::254\/128 .* -j tw-out-imds$/)]);
  });

  it.each(['root-only', 'none'] as const)('%s: decided before the policy, so a role opening tcp/80 to 0.0.0.0/0 cannot reach it', (mode) => {
    const { v4 } = renderIptables(withHttpOut(mode));
    const out = chainLines(v4, 'OUTPUT');
    const deny = out.findIndex((l) => l.endsWith('-j tw-out-imds'));
    const policy = out.findIndex((l) => l.endsWith('-j tw-out'));
    expect(deny).toBeGreaterThanOrEqual(0);
    expect(deny).toBeLessThan(policy);
    expect(chainLines(v4, 'tw-out')).toEqual([expect.stringMatching(/^-A tw-out -p tcp -m tcp --dport 80 /)]);
  });
});

describe('renderIptables: audit mode', () => {
  const enforce = renderIptables(sampleServer());
  const audit = renderIptables(sampleServer({ audit: true }));

  it.each(FAMILIES)('%s: drops nothing; every drop chain logs "audit" and accepts', (f) => {
    expect(audit[f]).not.toMatch(/-j DROP\b/);
    expect(enforce[f]).toMatch(/-j DROP\b/);
    for (const chain of Object.values(IPTABLES_CHAINS)) {
      const body = chainLines(audit[f], chain);
      if (chain === IPTABLES_CHAINS.ingress || chain === IPTABLES_CHAINS.egress || body.length === 0) continue;
      for (const l of body.slice(0, 2)) expect(l).toMatch(/--log-prefix "twinwall (ingress|egress|forward) audit( inv| spoof| imds)?: "/);
      expect(body[body.length - 1]).toBe(`-A ${chain} -j ACCEPT`);
    }
    expect(audit[f]).toContain('# AUDIT MODE');
    expect(enforce[f]).not.toContain('AUDIT');
  });

  it.each(FAMILIES)('%s: the same rules in the same order; only the verdict chains differ', (f) => {
    const isVerdictChain = (l: string): boolean => l.startsWith('-A tw-') && !l.startsWith('-A tw-in ') && !l.startsWith('-A tw-out ');
    const strip = (t: string): string[] => lines(t).filter((l) => !l.startsWith('#') && !isVerdictChain(l));
    expect(strip(audit[f])).toEqual(strip(enforce[f]));
  });
});

describe('renderFallback: what a family keeps when its real table fails to load', () => {
  const cases = Object.entries(ALL).flatMap(([name, make]) => FAMILIES.map((f) => [`${name}.${f}`, make, f] as const));

  it.each(cases)('%s: DROP policies, no user chain, core matches only (no comment, LOG, owner, addrtype, set, hl, limit)', (_n, make, f) => {
    const text = renderFallback(make())[f];
    const body = lines(text).filter((l) => !l.startsWith('#'));
    expect(body.slice(0, 4)).toEqual(['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]']);
    expect(body[body.length - 1]).toBe('COMMIT');
    expect(body.filter((l) => l.startsWith(':'))).toHaveLength(3);
    for (const l of body.filter((x) => x.startsWith('-A '))) {
      expect(l).toMatch(/^-A (INPUT|OUTPUT) .* -j ACCEPT$/);
      for (const m of l.matchAll(/ -m (\S+)/g)) expect(FALLBACK_MATCHES).toContain(m[1]);
      expect(l).not.toMatch(/--comment|--match-set|--uid-owner|--src-type|--hl-eq|--limit/);
    }
    expect(chainLines(text, 'FORWARD')).toEqual([]);
  });

  it.each(cases)('%s: never wider than the real table: every line of it is in the real table, less its comment and hop-limit match', (_n, make, f) => {
    const policy = make();
    const real = renderIptables(policy, { ipsetThreshold: Infinity })[f];
    const loose = new Set(lines(real).map((l) => l.replace(/ -m comment --comment "[^"]*"/, '').replace(/ -m hl --hl-eq \d+/, '')));
    for (const l of lines(renderFallback(policy)[f]).filter((x) => x.startsWith('-A '))) {
      // Admin rules are the policy's tw-in lines, written into INPUT.
      const asPolicy = l.replace(/^-A INPUT (-s \S+ )?(-p tcp|-p udp|-p icmp|-p ipv6-icmp)/, '-A tw-in $1$2');
      expect(loose.has(l) || loose.has(asPolicy)).toBe(true);
    }
  });

  it('the sample server\'s fallback: loopback, replies, DHCP, its admin LAN on ssh; IPv6 adds neighbour discovery; nothing of the roles', () => {
    const { v4, v6 } = renderFallback(sampleServer({ subnets: ['10.0.1.0/24'] }));
    expect(lines(v4).filter((l) => l.startsWith('-A '))).toEqual([
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT',
      `-A INPUT -s ${ADMIN_LAN} -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT`,
      '-A OUTPUT -o lo -j ACCEPT',
      '-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A OUTPUT -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT',
      '-A OUTPUT -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT',
      '-A OUTPUT -d 10.0.1.1/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT',
    ]);
    expect(v4).toContain('# sshAdmin/ssh: administration from declared admin networks\n');
    expect(lines(v6).filter((l) => l.startsWith('-A '))).toEqual([
      '-A INPUT -i lo -j ACCEPT',
      ...[133, 134, 135, 136, 137].map((t) => `-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`),
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -d fe80::/10 -p udp -m udp --sport 547 --dport 546 -j ACCEPT',
      '-A INPUT -s 2001:db8:a::/48 -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT',
      '-A OUTPUT -o lo -j ACCEPT',
      ...[133, 135, 136].map((t) => `-A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`),
      '-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A OUTPUT -d ff02::1:2/128 -p udp -m udp --sport 546 --dport 547 -j ACCEPT',
      '-A OUTPUT -d fe80::/10 -p udp -m udp --sport 546 --dport 547 -j ACCEPT',
    ]);
  });

  it('admin ingress is what roles marked admin accept (sshAdmin, or a custom role with admin: true), normalised on its own; other roles add nothing', () => {
    const bastion = HostPolicy.compose('bastion', [
      customRole('vpnGate', [Flow.ingress(Port.udp(51820), Peer.ipv4('198.51.100.0/24'), 'WireGuard from the office')], 'VPN into the admin network.', { admin: true }),
      webServer(),
    ]);
    expect(chainLines(renderFallback(bastion).v4, 'INPUT').filter((l) => l.includes('51820') || l.includes('--dport 80'))).toEqual([
      '-A INPUT -s 198.51.100.0/24 -p udp -m udp --dport 51820 -m conntrack --ctstate NEW -j ACCEPT',
    ]);
    const noAdmin = renderFallback(HostPolicy.compose('web', [webServer()]));
    expect(chainLines(noAdmin.v4, 'INPUT').filter((l) => l.includes('--ctstate NEW'))).toEqual([]);
  });

  it('same policy, same bytes; independent of role order', () => {
    const a = HostPolicy.compose('h', [webServer(), sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })]);
    const b = HostPolicy.compose('h', [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] }), webServer()]);
    expect(renderFallback(a)).toEqual(renderFallback(b));
  });
});

describeTier('iptables-restore', [root, onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('ip'), netns, ipset], () => {
  const cases = Object.entries(ALL).flatMap(([name, make]) => FAMILIES.map((f) => [`${name}.${f}`, make, f] as const));
  it.each(cases)('%s is accepted by --test', (_n, make, f) => {
    const rendered = renderIptables(make());
    const text = rendered[f];
    const tool = f === 'v4' ? 'iptables-restore' : 'ip6tables-restore';
    // --test parses and checks the whole ruleset against the kernel without committing it.
    if (rendered.ipsets === undefined) {
      expect(() => execFileSync(tool, ['--test'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] })).not.toThrow();
      return;
    }
    // A ruleset that matches ipsets needs them to exist: create them in a namespace of its own.
    const ns = `twtest${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'ipset', '-exist', 'restore'], { input: rendered.ipsets, stdio: ['pipe', 'pipe', 'pipe'] });
      expect(() => execFileSync('ip', ['netns', 'exec', ns, tool, '--test'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] })).not.toThrow();
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
  });

  it.each(cases)('%s: its fallback is accepted by --test', (_n, make, f) => {
    const tool = f === 'v4' ? 'iptables-restore' : 'ip6tables-restore';
    expect(() => execFileSync(tool, ['--test'], { input: renderFallback(make())[f], stdio: ['pipe', 'pipe', 'pipe'] })).not.toThrow();
  });

  it('rejects a broken ruleset (the check is not vacuous)', () => {
    const broken = renderIptables(sampleServer()).v4.replace('--ctstate NEW', '--ctstate NEWISH');
    expect(() => execFileSync('iptables-restore', ['--test'], { input: broken, stdio: ['pipe', 'pipe', 'pipe'] })).toThrow();
  });
});

describe('address sets above the threshold become ipsets', () => {
  /** n SSH admins at distinct, non-adjacent IPv4 /32s (and m IPv6 /128s). */
  const admins = (n: number, m = 0) =>
    HostPolicy.compose('jump', [
      customRole('admins', [
        ...Array.from({ length: n }, (_, i) => Flow.ingress(Port.tcp(22), Peer.ipv4(`198.51.100.${2 * i + 1}/32`), 'admin host')),
        ...Array.from({ length: m }, (_, i) => Flow.ingress(Port.tcp(22), Peer.ipv6(`2001:db8:a::${(2 * i + 1).toString(16)}/128`), 'admin host')),
      ]),
    ]);

  it(`the threshold is ${DEFAULT_IPSET_THRESHOLD}: that many CIDRs stay linear, one more is a set`, () => {
    const at = renderIptables(admins(DEFAULT_IPSET_THRESHOLD));
    expect(at.ipsets).toBeUndefined();
    expect(chainLines(at.v4, 'tw-in')).toHaveLength(DEFAULT_IPSET_THRESHOLD);
    const over = renderIptables(admins(DEFAULT_IPSET_THRESHOLD + 1));
    expect(chainLines(over.v4, 'tw-in')).toEqual([
      '-A tw-in -m set --match-set tw4-in-tcp-22 src -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment "admins: admin host (ipset tw4-in-tcp-22, 17 CIDRs)" -j ACCEPT',
    ]);
    expect(over.ipsets).toBe(
      [
        '# twinwall address sets for host jump (ipset restore): load before rules.v4 and rules.v6, which match them.',
        '# Rendered from the host policy: change the roles, not this file.',
        'create tw4-in-tcp-22 hash:net family inet hashsize 1024 maxelem 65536',
        'flush tw4-in-tcp-22',
        ...Array.from({ length: 17 }, (_, i) => `add tw4-in-tcp-22 198.51.100.${2 * i + 1}/32`),
        '',
      ].join('\n'),
    );
  });

  it('counts each family apart: one set per family, only where that family is over', () => {
    const r = renderIptables(admins(17, 3));
    expect(r.ipsets).toContain('create tw4-in-tcp-22 hash:net family inet ');
    expect(r.ipsets).not.toContain('tw6-');
    expect(chainLines(r.v6, 'tw-in')).toHaveLength(3);
    const both = renderIptables(admins(17, 17));
    expect(both.ipsets).toContain('create tw6-in-tcp-22 hash:net family inet6 hashsize 1024 maxelem 65536\nflush tw6-in-tcp-22\nadd tw6-in-tcp-22 2001:db8:a::1/128\n');
    expect(chainLines(both.v6, 'tw-in')).toEqual([expect.stringMatching(/^-A tw-in -m set --match-set tw6-in-tcp-22 src -p tcp -m tcp --dport 22 /)]);
  });

  it('the threshold is an option; Infinity keeps every rule linear; bad values are refused', () => {
    expect(renderIptables(admins(3), { ipsetThreshold: 2 }).ipsets).toContain('create tw4-in-tcp-22');
    expect(renderIptables(admins(3), { ipsetThreshold: 3 }).ipsets).toBeUndefined();
    expect(renderIptables(admins(100), { ipsetThreshold: Infinity }).ipsets).toBeUndefined();
    for (const bad of [0, 2.5, NaN, -1]) {
      let err: unknown;
      try {
        renderIptables(admins(3), { ipsetThreshold: bad });
      } catch (e) {
        err = e;
      }
      expect(String((err as Error).message)).toContain('TW161 OPTION_INVALID at jump: ipsetThreshold');
    }
  });

  it('groups by direction and match: different ports are different sets, security-group and prefix-list CIDRs join, /0 stays a line', () => {
    const many = (port: number) => Array.from({ length: 10 }, (_, i) => Flow.egress(Port.tcp(port), Peer.ipv4(`203.0.113.${4 * i}/31`), `to ${port}`));
    const list = Peer.prefixList('pl-0123456789abcdef0', { cidrs: Array.from({ length: 8 }, (_, i) => `198.51.100.${16 * i}/29`), label: 'partners' });
    const p = HostPolicy.compose('mix', [
      customRole('calls', [...many(443), ...many(8443), Flow.egress(Port.tcp(443), list, 'partners'), Flow.egress(Port.tcp(443), Peer.anyIpv6(), 'web')]),
    ]);
    const r = renderIptables(p);
    // tcp/443: 10 CIDRs + 8 list entries = 18 > 16, a set; tcp/8443: 10, linear.
    expect(r.ipsets?.match(/^create .*$/gm)).toEqual(['create tw4-out-tcp-443 hash:net family inet hashsize 1024 maxelem 65536']);
    expect(r.ipsets?.match(/^add tw4-out-tcp-443 /gm)).toHaveLength(18);
    expect(chainLines(r.v4, 'tw-out').filter((l) => l.includes('--dport 8443'))).toHaveLength(10);
    expect(chainLines(r.v4, 'tw-out').filter((l) => l.includes('--dport 443 '))).toEqual([
      '-A tw-out -m set --match-set tw4-out-tcp-443 dst -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -m comment --comment "calls: to 443 | calls: partners (ipset tw4-out-tcp-443, 18 CIDRs)" -j ACCEPT',
    ]);
    expect(chainLines(r.v6, 'tw-out')).toEqual(['-A tw-out -p tcp -m tcp --dport 443 -m conntrack --ctstate NEW -m comment --comment "calls: web" -j ACCEPT']);
  });

  it('the golden fixture manyAdmins carries its set (ipsets golden)', () => {
    const r = renderIptables(ROLE_FIXTURES.manyAdmins());
    expectGolden('iptables/manyAdmins.ipsets', r.ipsets as string);
  });
});

describeTier('ipset restore', [root, onPath('ip'), netns, ipset], () => {
  it('the sets load with ipset restore (twice: a reload refills them) and the tables that match them load after', () => {
    const ns = `twips${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const r = renderIptables(ROLE_FIXTURES.manyAdmins());
      const run = (argv: string[], input?: string) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      expect(() => run(['iptables-restore'], r.v4)).toThrow(); // the set does not exist yet
      run(['ipset', '-exist', 'restore'], r.ipsets);
      run(['ipset', '-exist', 'restore'], r.ipsets);
      run(['iptables-restore'], r.v4);
      run(['ip6tables-restore'], r.v6);
      expect(run(['ipset', 'list', 'tw4-in-tcp-22']).match(/^192\.0\.2\.\d+$/gm)).toHaveLength(20);
      expect(run(['iptables', '-S', 'tw-in'])).toContain('--match-set tw4-in-tcp-22 src');
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
  });
});
