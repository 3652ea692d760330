/**
 * Unit tests of the checker's parts, on hand-written input (rules twinwall did not write):
 * the iptables-restore parser, the symbolic host-wall model (user chains, jumps, goto/RETURN,
 * negated matches, --dports lists, ipsets, what it cannot decide), the Terraform reader (inline
 * blocks, aws_security_group_rule, several groups per host, IPv6, -1, port ranges, references)
 * and the user-data reader.
 */
import * as zlib from 'zlib';
import { renderIptables } from '../lib/render/iptables';
import { ROLE_FIXTURES } from './support/fixtures';
import { parseAddress } from '../lib/address';
import {
  Box,
  IntervalSet,
  ModelContext,
  Region,
  checkStacks,
  decodeUserData,
  hostCidrsTags,
  modelDirection,
  parseIpsets,
  parseIptablesRestore,
  parseRuleLine,
  readHostCidrsTags,
  readHostWall,
  readStack,
  ruleRegion,
  tokenize,
} from '../lib/check';

const v4 = (a: string): bigint => parseAddress(a).value;

/** What the model says about one concrete new connection. */
function verdict(table: string, q: { direction: 'ingress' | 'egress'; proto: number; port: number; remote: string; uid?: number; sport?: number; forged?: boolean }, ipsetText = ''): string {
  const family = q.remote.includes(':') ? 6 : 4;
  const doc = parseIptablesRestore(table, family);
  expect(doc.problems).toEqual([]);
  const ctx: ModelContext = { family, direction: q.direction, ipsets: parseIpsets([ipsetText]) };
  const probe = Box.where(family === 4 ? 32 : 128, {
    proto: IntervalSet.of(q.proto),
    point: IntervalSet.of(q.port),
    sport: IntervalSet.of(q.proto === 6 || q.proto === 17 ? (q.sport ?? 40000) : 0),
    remote: IntervalSet.of(parseAddress(q.remote).value),
    kind: IntervalSet.of(q.forged ? 1 : 0),
    local: IntervalSet.of(parseAddress(q.forged ? (family === 4 ? '192.0.2.99' : '2001:db8::99') : family === 4 ? '10.0.0.5' : '2001:db8:1::5').value),
    hl: IntervalSet.of(64),
    uid: IntervalSet.of(q.direction === 'egress' ? (q.uid ?? 1000) : 0),
  });
  const m = modelDirection(doc.tables.get('filter'), ctx, Region.of([probe]));
  const kinds = [m.admitted.length > 0 ? 'admit' : '', m.dropped.length > 0 ? 'drop' : '', m.undecidable.length > 0 ? 'undecidable' : ''].filter((x) => x !== '');
  return kinds.join('+');
}

const TABLE = (body: string, policy = 'DROP'): string => `*filter\n:INPUT ${policy} [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ${policy} [0:0]\n${body}\nCOMMIT\n`;

/** The rule keys of a one-rule table, or the parser's refusal. */
function keys(body: string, family: 4 | 6 = 4): string[] | string {
  const doc = parseIptablesRestore(TABLE(body), family);
  if (doc.problems.length > 0) return `refused: ${doc.problems.map((p) => p.message).join('; ')}`;
  return [...(doc.tables.get('filter')?.chains.values() ?? [])].flatMap((c) => c.rules.map((r) => r.key));
}

function sameMeaning(a: string, b: string, family: 4 | 6 = 4): void {
  const ka = keys(a, family);
  expect(typeof ka).not.toBe('string');
  expect(ka).toEqual(keys(b, family));
}

function refused(body: string, reason: RegExp, family: 4 | 6 = 4): void {
  expect(keys(body, family)).toMatch(reason);
}

describe('iptables-restore tokenizer (as iptables-restore splits words)', () => {
  const words = (line: string): string[] => tokenize(line).map((w) => w.text);

  it('quotes with double quotes only; a backslash escapes inside them and is literal outside', () => {
    expect(words(`-A INPUT -m comment --comment "a \\"b\\" c\\\\" -j ACCEPT`)).toEqual(['-A', 'INPUT', '-m', 'comment', '--comment', 'a "b" c\\', '-j', 'ACCEPT']);
    expect(words(`--comment 'a b'`)).toEqual(['--comment', "'a", "b'"]);
    expect(words('--comment a\\ b')).toEqual(['--comment', 'a\\', 'b']);
    expect(words('x"y z"')).toEqual(['xy z']);
    expect(words('"x"y')).toEqual(['x', 'y']); // the closing quote ends the word
    expect(words('\t-A\t\tINPUT  ')).toEqual(['-A', 'INPUT']);
  });

  it('refuses what iptables releases read differently, or that it would refuse', () => {
    expect(() => tokenize('--comment ""')).toThrow(/empty quoted word/);
    expect(() => tokenize('--comment "open')).toThrow(/never closed/);
    expect(() => tokenize('--comment "a\\')).toThrow(/never closed/);
    expect(() => tokenize('-j ACCEPT\r')).toThrow(/printable ASCII/);
    expect(() => tokenize('-j ACCEPT\u0000 -s 1.2.3.4')).toThrow(/printable ASCII/);
    expect(() => tokenize(`--comment ${'x'.repeat(1024)}`)).toThrow(/1,024 bytes/);
    expect(tokenize(`--comment ${'x'.repeat(1023)}`)[1].text.length).toBe(1023);
    expect(() => tokenize(Array.from({ length: 251 }, () => '-f').join(' '))).toThrow(/more than 250 words/);
  });
});

describe('iptables-restore parser', () => {
  it('reads the issue\'s hostile comment as the kernel does: -d and the second -j are comment text', () => {
    const line = `-A INPUT -p tcp --dport 22 -m comment --comment '"' -d 10.10.0.2/32 -m comment --comment '" -m comment --comment dnsClient/dns' -j ACCEPT`;
    const [rule] = parseRuleLine(line, 4).rules;
    expect(rule.options.filter((o) => o.name === '-d')).toEqual([]);
    expect(rule.comment).toBe(`'' -d 10.10.0.2/32 -m comment --comment ' dnsClient/dns'`);
    expect(rule.target?.name).toBe('ACCEPT');
    // iptables-save printed exactly this for it (kernel tier: kernel-parse.property.test.ts).
    sameMeaning(line, `-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "\\'\\' -d 10.10.0.2/32 -m comment --comment \\'" -m comment --comment "dnsClient/dns\\'" -j ACCEPT`);
  });

  it('treats quoted words like unquoted ones, and gives an option the next word whatever it is', () => {
    sameMeaning('-A INPUT "-s" 192.0.2.1 "!" "-d" 192.0.2.2 "-j" ACCEPT', '-A INPUT -s 192.0.2.1/32 ! -d 192.0.2.2/32 -j ACCEPT');
    const [r] = parseRuleLine('-A INPUT -m comment --comment -j -j ACCEPT', 4).rules;
    expect([r.comment, r.target?.name]).toEqual(['-j', 'ACCEPT']);
  });

  it('splits a rule into matches, canonical options (with negation) and target', () => {
    const [r] = parseRuleLine('-A tw-in ! -s 10.0.0.0/8 -p tcp -m multiport --dports 22,80:90 -m comment --comment "web" -j ACCEPT', 4).rules;
    expect(r.chain).toBe('tw-in');
    expect(r.options).toEqual([
      { name: '-s', negated: true, args: ['10.0.0.0/8'] },
      { name: '-p', negated: false, args: ['6'] },
      { module: 'multiport', name: '--dports', negated: false, args: ['22,80:90'] },
      { module: 'comment', name: '--comment', negated: false, args: ['web'] },
    ]);
    expect(r.target).toEqual({ how: 'jump', name: 'ACCEPT', options: [] });
    expect(r.comment).toBe('web');
  });

  it('gives forms iptables stores alike the same key', () => {
    sameMeaning('-A INPUT -p tcp --dport 22 -j ACCEPT', '-A INPUT -p 6 -m tcp --destination-port 22 -j ACCEPT');
    sameMeaning('-A INPUT -p tcp -m tcp --dport 0:65535 -j ACCEPT', '-A INPUT -p tcp -j ACCEPT');
    sameMeaning('-A INPUT -p tcp -m tcp ! --dport :80 -j ACCEPT', '-A INPUT -p tcp -m tcp --dport 81:65535 -j ACCEPT');
    sameMeaning('-A INPUT -p tcp -m tcp --syn -j ACCEPT', '-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT');
    sameMeaning('-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT', '-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT');
    sameMeaning('-A INPUT -p icmp --icmp-type port-unreachable -j REJECT', '-A INPUT -p icmp -m icmp --icmp-type 3/3 -j REJECT --reject-with icmp-port-unreachable');
    sameMeaning('-A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT', '-A INPUT -p 58 -m icmp6 --icmpv6-type 135 -j ACCEPT', 6);
    // IPv4's kernel match reads type 255 as any type, whatever the code; IPv6 has no wildcard.
    sameMeaning('-A INPUT -p icmp -m icmp --icmp-type 255/114 -j ACCEPT', '-A INPUT -p icmp -m icmp --icmp-type any -j ACCEPT');
    expect(keys('-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 255/114 -j ACCEPT', 6)).not.toEqual(keys('-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 255 -j ACCEPT', 6));
    sameMeaning('-A INPUT -m limit --limit 60/min -j LOG --log-level 4', '-A INPUT -m limit --limit 1/sec --limit-burst 5 -j LOG');
    sameMeaning('-A INPUT -m conntrack --ctstate ESTABLISHED,NEW -m addrtype --dst-type LOCAL,UNICAST -j ACCEPT', '-A INPUT -m conntrack --ctstate NEW,ESTABLISHED -m addrtype --dst-type UNICAST,LOCAL -j ACCEPT');
    sameMeaning('-A INPUT -s 0.0.0.0/0 -d 10.0.0.5/24 -j ACCEPT', '-A INPUT -d 10.0.0.0/24 -j ACCEPT');
    sameMeaning('-A INPUT -d 2001:DB8:0:0::1 -j ACCEPT', '-A INPUT -d 2001:db8::1/128 -j ACCEPT', 6);
    sameMeaning('-A INPUT -m iprange --dst-range 10.0.0.5 -j ACCEPT', '-A INPUT -m iprange --dst-range 10.0.0.5-10.0.0.5 -j ACCEPT');
    sameMeaning('-A INPUT -m multiport --dports 1 -p tcp -j ACCEPT', '-A INPUT -p tcp -m multiport --dports 1 -j ACCEPT'); // a match's protocol is checked at the end
    sameMeaning('-A INPUT -m hashlimit --hashlimit-upto 2/min --hashlimit-name x -j ACCEPT', '-A INPUT -m hashlimit --hashlimit-upto 2/min --hashlimit-burst 5 --hashlimit-name x --hashlimit-htable-expire 60000 -j ACCEPT');
    // Different meanings, different keys.
    expect(keys('-A INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT')).not.toEqual(keys('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'));
    expect(keys('-A INPUT -m comment --comment a -j ACCEPT')).not.toEqual(keys('-A INPUT -m comment --comment b -j ACCEPT'));
  });

  it('makes one rule per address pair, sources outermost, as iptables does', () => {
    const doc = parseIptablesRestore(TABLE('-A INPUT -s 10.0.0.1,10.0.0.2 -d 192.0.2.1,192.0.2.2 -j ACCEPT\n-A INPUT -j DROP'), 4);
    const input = doc.tables.get('filter')?.chains.get('INPUT');
    expect(input?.rules.map((r) => [r.number, r.line, r.text])).toEqual([
      [1, 5, '-s 10.0.0.1/32 -d 192.0.2.1/32 -j ACCEPT'],
      [2, 5, '-s 10.0.0.1/32 -d 192.0.2.2/32 -j ACCEPT'],
      [3, 5, '-s 10.0.0.2/32 -d 192.0.2.1/32 -j ACCEPT'],
      [4, 5, '-s 10.0.0.2/32 -d 192.0.2.2/32 -j ACCEPT'],
      [5, 6, '-j DROP'],
    ]);
  });

  it('reads policies, user chains, counters, -I positions and comment lines', () => {
    const doc = parseIptablesRestore(TABLE(':mine - [0:0]\n# a comment\n\n-A INPUT -j mine\n[3:4] -I INPUT 1 -i lo -j ACCEPT\n[0:0]-I INPUT 3 -j DROP'), 4);
    expect(doc.problems).toEqual([]);
    const input = doc.tables.get('filter')?.chains.get('INPUT');
    expect(input?.policy).toBe('DROP');
    expect(input?.rules.map((r) => r.text)).toEqual(['-i lo -j ACCEPT', '-j mine', '-j DROP']);
  });

  it('refuses what iptables-restore refuses, or reads another way than it looks', () => {
    refused('-A INPUT -p tcp --dp 22 -j ACCEPT', /unknown option "--dp"/); // an abbreviation iptables would take
    refused('-A INPUT -p tcp --dport=22 -j ACCEPT', /unknown option/);
    refused('-A INPUT -ptcp -j ACCEPT', /unknown option "-ptcp"/);
    refused('-A INPUT -p tcp --dport ssh -j ACCEPT', /not a decimal number/);
    refused('-A INPUT -s localhost -j ACCEPT', /not an IPv4 address/);
    refused('-A INPUT -s 10.1 -j ACCEPT', /full dotted-quad/); // iptables: 10.1.0.0
    refused('-A INPUT -s 010.0.0.1 -j ACCEPT', /full dotted-quad/); // iptables: 8.0.0.1
    refused('-A INPUT -p tcp --dport 022 -j ACCEPT', /octal/);
    refused('-A OUTPUT -m owner --uid-owner root -j ACCEPT', /not a decimal number/);
    refused('-A INPUT ! ! -s 10.0.0.1 -j ACCEPT', /! !/);
    refused('-A INPUT ! -j ACCEPT', /"!" before -j/);
    refused('-A INPUT -j ACCEPT -j DROP', /two targets/);
    refused('-A INPUT ! -m tcp -p tcp -j ACCEPT', /"!" before -m/);
    refused('-A INPUT -j ACCEPT !', /"!" at the end/);
    refused('-A INPUT -s ! 10.0.0.1 -j ACCEPT', /old-style negation/);
    refused('-A INPUT -m comment ! --comment x -j ACCEPT', /cannot be negated/);
    refused('-A INPUT -p tcp -m tcp --dport 1 --dport 2 -j ACCEPT', /given twice/);
    refused('-A INPUT -p tcp -m tcp --dport 1 -m tcp --dport 2 -j ACCEPT', /loaded twice/); // iptables-save shows --dport 2 only
    refused('-A INPUT -p tcp -p udp -j ACCEPT', /given twice/);
    refused('-A INPUT -p udp -m tcp --dport 5 -j ACCEPT', /-m tcp needs "-p 6"/);
    refused('-A INPUT ! -p tcp -m tcp --dport 5 -j ACCEPT', /not negated/); // iptables-nft accepts it, matching bytes of other protocols
    refused('-A INPUT -p tcp -m tcp --dport 5:3 -j ACCEPT', /first port is above the last/);
    refused('-A INPUT -j REJECT --reject-with tcp-reset', /needs -p tcp/);
    refused('-A INPUT -o lo -j ACCEPT', /-o in INPUT/);
    refused('-A INPUT -s 10.0.0.1,10.0.0.2 ! -d 10.0.0.3,10.0.0.4 -j ACCEPT', /with an address list/);
    refused('-A INPUT -j nowhere', /not declared before this line/);
    refused('-A INPUT -m recent --rcheck -j DROP', /-m recent: a match twinwall does not read/);
    refused('-A INPUT -p icmp -m icmp6 --icmpv6-type 1 -j ACCEPT', /does not exist in iptables/);
    refused('-A INPUT -m hl --hl-eq 1 -j ACCEPT', /does not exist in iptables/);
    refused('-A INPUT -f -j ACCEPT', /-f does not exist in ip6tables/, 6);
    refused('-A INPUT -m comment --comment "' + 'x'.repeat(256) + '" -j ACCEPT', /longer than 255 bytes/);
    refused('-A INPUT -j LOG --log-prefix "' + 'x'.repeat(30) + '"', /longer than 29 bytes/);
    refused('-A INPUT -m limit --limit 20000/sec -j LOG', /faster than iptables can express/);
    refused('-A INPUT -p udp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16 -j ACCEPT', /at most 15 ports/);
    refused(':later - [0:0]\n-A INPUT -j later\n:mine - [0:0]\n-A INPUT -j mine2', /mine2/);
    refused('-A INPUT -j later\n:later - [0:0]', /not declared before this line/);
    refused(':mine ACCEPT [0:0]', /has a policy/);
    refused(':mine - [0:0]\n:mine - [0:0]', /declared twice/);
    refused(':LOGDROP - [0:0]', /not all capitals/);
    refused(':x - [0:0]\n-A INPUT -j x\n-A x -m owner --uid-owner 0 -j ACCEPT', /INPUT reaches: the kernel allows it on outgoing packets only/);
    refused('   ', /a line of blanks/);
    refused("  # indented comment", /"#" is not -A or -I/);
    refused('-I INPUT 2 -j ACCEPT', /index of insertion too big/);
    refused('-I INPUT -s 10.0.0.1,10.0.0.2 -j ACCEPT', /-I with an address list/);
    refused(`-A INPUT -m comment --comment ${'x'.repeat(1000)} ${Array.from({ length: 10 }, () => `-m comment --comment ${'y'.repeat(1000)}`).join(' ')}`, /reads lines in pieces of 10239 bytes/);
    refused(':a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A a -j b\n-A b -j a', /leads back here: a loop/);
    refused('-A INPUT -p udp -m udp ! --dport 0:65535 -j ACCEPT', /iptables-nft stores it as matching every port/); // seen with nft list ruleset
    refused('-A INPUT ! -d 10.0.0.0/0 -j ACCEPT', /never matches/);
    refused('-A INPUT -m addrtype --dst-type BROADCAST -j ACCEPT', /does not match these for IPv6/, 6);
    refused('-A INPUT -m hashlimit --hashlimit-upto 1/day --hashlimit-name x -j ACCEPT', /credit arithmetic/);
    refused('-A INPUT -p udp -m multiport --dports 443:443 -j ACCEPT', /must be below the last/);
    refused('-m tcp --dport 22 -A INPUT -p tcp', /is not -A or -I/);
    expect(parseIptablesRestore('*filter\n:INPUT DROP [0:0]\n', 4).problems[0].message).toMatch(/never committed/);
    expect(parseIptablesRestore('*filter junk\nCOMMIT\n', 4).problems[0].message).toMatch(/not "\*name"/);
    expect(parseIptablesRestore('*filter\nCOMMIT \n', 4).problems[0].message).toMatch(/"COMMIT" is not -A or -I/);
    expect(parseIptablesRestore('*filter\r\nCOMMIT\r\n', 4).problems.length).toBeGreaterThan(0);
    expect(parseIptablesRestore('*filter\nCOMMIT\n*filter\nCOMMIT\n', 4).problems[0].message).toMatch(/second \*filter block/);
    expect(parseIptablesRestore('*nat\n-A OUTPUT -j ACCEPT\nCOMMIT\n', 4).problems[0].message).toMatch(/filter table only/);
  });

  it('refuses an implicit option that getopt would read as a longer one already known, naming every such option', () => {
    // -m multiport is loaded, so getopt_long reads --dport as multiport's --dports.
    refused('-A INPUT -p tcp -m multiport --dport 22 -j ACCEPT', /refused: .*--dport is the start of --dports: getopt would read it as that option/);
    // An option no loaded match or iptables itself makes longer is read by the implicit match.
    expect(keys('-A INPUT -p tcp --dport 22 -j ACCEPT')).toEqual(keys('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'));
  });

  it('refuses a set the user-data does not create, or one of the other family, when it knows the sets', () => {
    const sets = { ipsets: new Map<string, 4 | 6>([['admins4', 4], ['admins6', 6]]) };
    const rule = (set: string): string => TABLE(`-A INPUT -m set --match-set ${set} src -j ACCEPT`);
    expect(parseIptablesRestore(rule('admins4'), 4, sets).problems).toEqual([]);
    expect(parseIptablesRestore(rule('nobody'), 4, sets).problems[0].message).toMatch(/not created before the table loads/);
    expect(parseIptablesRestore(rule('admins6'), 4, sets).problems[0].message).toMatch(/is IPv6, used in the IPv4 table/);
  });

  it('reads a line seen before in another context as that context says (commands are read once per distinct context)', () => {
    // The same line, read first where everything it names exists, then where something does not:
    // each reading must depend on its own document (the family, the chains declared before the
    // line, the ipsets), never on an earlier one.
    const jump = '-A INPUT -p tcp --dport 22 -j admin';
    expect(parseIptablesRestore(`*filter\n:admin - [0:0]\n${jump}\nCOMMIT\n`, 4).problems).toEqual([]);
    expect(parseIptablesRestore(`*filter\n${jump}\nCOMMIT\n`, 4).problems[0].message).toMatch(/the chain is not declared before this line/);
    // Declared after the line: still refused, as iptables-restore refuses it.
    expect(parseIptablesRestore(`*filter\n${jump}\n:admin - [0:0]\nCOMMIT\n`, 4).problems[0].message).toMatch(/the chain is not declared before this line/);
    const set = '-A INPUT -m set --match-set admins src -j ACCEPT';
    expect(parseIptablesRestore(TABLE(set), 4, { ipsets: new Map([['admins', 4 as const]]) }).problems).toEqual([]);
    expect(parseIptablesRestore(TABLE(set), 4, { ipsets: new Map([['admins', 6 as const]]) }).problems[0].message).toMatch(/is IPv6, used in the IPv4 table/);
    expect(parseIptablesRestore(TABLE(set), 4, { ipsets: new Map() }).problems[0].message).toMatch(/not created before the table loads/);
    const v4 = '-A INPUT -s 192.0.2.1 -j ACCEPT';
    expect(parseIptablesRestore(TABLE(v4), 4).problems).toEqual([]);
    expect(parseIptablesRestore(TABLE(v4), 6).problems.length).toBe(1);
    // A shared reading keeps each document's own rule numbers and lines.
    const twice = parseIptablesRestore(`*filter\n-A INPUT -i lo -j ACCEPT\n${v4}\n${v4}\nCOMMIT\n`, 4);
    const rules = twice.tables.get('filter')?.chains.get('INPUT')?.rules ?? [];
    expect(rules.map((r) => [r.number, r.line, r.text])).toEqual([
      [1, 2, '-i lo -j ACCEPT'],
      [2, 3, '-s 192.0.2.1 -j ACCEPT'],
      [3, 4, '-s 192.0.2.1 -j ACCEPT'],
    ]);
    expect(parseIptablesRestore(TABLE(v4), 4).tables.get('filter')?.chains.get('INPUT')?.rules.map((r) => [r.number, r.line])).toEqual([[1, 5]]);
  });

  it('reads every table the renderer writes without a problem', () => {
    for (const f of Object.keys(ROLE_FIXTURES)) {
      const r = renderIptables(ROLE_FIXTURES[f]());
      for (const [family, text] of [[4, r.v4], [6, r.v6]] as const) expect({ f, family, problems: parseIptablesRestore(text, family).problems }).toEqual({ f, family, problems: [] });
    }
  });
});

describe('host-wall model', () => {
  const ssh = (remote: string, port = 22) => ({ direction: 'ingress' as const, proto: 6, port, remote });

  it('follows user chains, jumps back after RETURN, and goto returns to the caller\'s caller', () => {
    const t = TABLE(
      [
        ':a - [0:0]',
        ':b - [0:0]',
        ':c - [0:0]',
        '-A INPUT -j a',
        '-A INPUT -p tcp --dport 25 -j ACCEPT',
        '-A a -s 192.0.2.0/24 -j RETURN',
        '-A a -p tcp --dport 22 -j b',
        '-A a -p tcp --dport 80 -g c',
        '-A b -j ACCEPT',
        '-A c -s 198.51.100.0/24 -j ACCEPT',
      ].join('\n'),
    );
    expect(verdict(t, ssh('203.0.113.1'))).toBe('admit'); // INPUT → a → b → ACCEPT
    expect(verdict(t, ssh('192.0.2.1'))).toBe('drop'); // RETURN from a, then nothing: policy DROP
    expect(verdict(t, ssh('192.0.2.1', 25))).toBe('admit'); // RETURN, then INPUT rule 2
    expect(verdict(t, ssh('198.51.100.9', 80))).toBe('admit'); // goto c, ACCEPT
    expect(verdict(t, ssh('203.0.113.1', 80))).toBe('drop'); // goto c falls off: back in INPUT after "-j a", policy
  });

  it('handles negated addresses, protocols and ports', () => {
    const t = TABLE('-A INPUT ! -s 10.0.0.0/8 -p tcp ! --dport 1:1023 -j ACCEPT\n-A INPUT ! -p tcp -j ACCEPT');
    expect(verdict(t, ssh('203.0.113.1', 8080))).toBe('admit');
    expect(verdict(t, ssh('203.0.113.1', 443))).toBe('drop');
    expect(verdict(t, ssh('10.1.2.3', 8080))).toBe('drop');
    expect(verdict(t, { direction: 'ingress', proto: 17, port: 53, remote: '10.1.2.3' })).toBe('admit');
  });

  it('reads multiport --dports lists with ranges, and -m state / conntrack', () => {
    const t = TABLE('-A INPUT -p udp -m multiport --dports 53,123,5000:5002 -m state --state NEW -j ACCEPT\n-A INPUT -p tcp -m conntrack --ctstate ESTABLISHED -j ACCEPT');
    for (const port of [53, 123, 5000, 5002]) expect(verdict(t, { direction: 'ingress', proto: 17, port, remote: '203.0.113.1' })).toBe('admit');
    for (const port of [52, 124, 4999, 5003]) expect(verdict(t, { direction: 'ingress', proto: 17, port, remote: '203.0.113.1' })).toBe('drop');
    expect(verdict(t, ssh('203.0.113.1'))).toBe('drop'); // a new connection is never ESTABLISHED
  });

  it('matches ipsets defined in the user-data, with nomatch entries and port dimensions', () => {
    const sets = 'create admins hash:net family inet\nadd admins 192.0.2.0/24\nadd admins 192.0.2.128/25 nomatch\ncreate svc hash:ip,port family inet\nadd svc 198.51.100.7,udp:53';
    const t = TABLE('-A INPUT -p tcp --dport 22 -m set --match-set admins src -j ACCEPT\n-A OUTPUT -m set --match-set svc dst,dst -j ACCEPT');
    expect(verdict(t, ssh('192.0.2.1'), sets)).toBe('admit');
    expect(verdict(t, ssh('192.0.2.200'), sets)).toBe('drop');
    expect(verdict(t, { direction: 'egress', proto: 17, port: 53, remote: '198.51.100.7' }, sets)).toBe('admit');
    expect(verdict(t, { direction: 'egress', proto: 6, port: 53, remote: '198.51.100.7' }, sets)).toBe('drop');
  });

  it('calls an unknown ipset, a rate limit or an unmodelled match undecidable, never admitted or dropped', () => {
    expect(verdict(TABLE('-A INPUT -m set --match-set nobody src -j ACCEPT'), ssh('192.0.2.1'))).toBe('undecidable');
    expect(verdict(TABLE('-A INPUT -p tcp -m limit --limit 1/s -j ACCEPT'), ssh('192.0.2.1'))).toBe('undecidable');
    expect(verdict(TABLE('-A INPUT -i eth0 -j ACCEPT'), ssh('192.0.2.1'))).toBe('undecidable');
    // ... but a LOG rule with a rate limit cannot change a verdict, and both forks agreeing is a verdict.
    expect(verdict(TABLE('-A INPUT -m limit --limit 1/s -j LOG\n-A INPUT -p tcp -j ACCEPT'), ssh('192.0.2.1'))).toBe('admit');
    expect(verdict(TABLE('-A INPUT -m hashlimit --hashlimit-upto 1/sec --hashlimit-name h -j ACCEPT', 'ACCEPT'), ssh('192.0.2.1'))).toBe('admit');
  });

  it('knows loopback, owner, addrtype and a missing table', () => {
    const t = TABLE('-A OUTPUT -o lo -j ACCEPT\n-A OUTPUT -m addrtype ! --src-type LOCAL -j DROP\n-A OUTPUT -d 169.254.169.254 -p tcp --dport 80 -m owner --uid-owner 0 -j ACCEPT\n-A OUTPUT -p tcp --dport 25 -j ACCEPT');
    const imds = { direction: 'egress' as const, proto: 6, port: 80, remote: '169.254.169.254' };
    expect(verdict(t, { ...imds, uid: 0 })).toBe('admit');
    expect(verdict(t, { ...imds, uid: 33 })).toBe('drop');
    expect(verdict(t, { direction: 'egress', proto: 6, port: 25, remote: '203.0.113.9' })).toBe('admit');
    expect(verdict(t, { direction: 'egress', proto: 6, port: 25, remote: '203.0.113.9', forged: true })).toBe('drop');
    const ctx: ModelContext = { family: 4, direction: 'ingress', ipsets: new Map() };
    const none = modelDirection(undefined, ctx);
    expect(none.dropped).toEqual([]);
    expect(Region.of(none.admitted.map((a) => a.box)).subtract(none.universe).isEmpty).toBe(true);
    expect(none.universe.subtract(Region.of(none.admitted.map((a) => a.box))).isEmpty).toBe(true);
  });

  it('admits every ICMP type for IPv4 type 255, as the kernel does', () => {
    const t = TABLE('-A INPUT -s 192.0.2.0/24 -p icmp -m icmp --icmp-type 255/3 -j ACCEPT');
    expect(verdict(t, { direction: 'ingress', proto: 1, port: 8 * 256, remote: '192.0.2.1' })).toBe('admit');
    expect(verdict(t, { direction: 'ingress', proto: 1, port: 13 * 256, remote: '192.0.2.1' })).toBe('admit');
  });

  it('works for IPv6 and ICMPv6 types by name', () => {
    const t = TABLE('-A INPUT -s 2001:db8::/32 -p ipv6-icmp --icmpv6-type echo-request -j ACCEPT');
    expect(verdict(t, { direction: 'ingress', proto: 58, port: 128 * 256, remote: '2001:db8::1' })).toBe('admit');
    expect(verdict(t, { direction: 'ingress', proto: 58, port: 128 * 256, remote: '2001:db9::1' })).toBe('drop');
  });
});

// ---------------------------------------------------------------------------------------------

const CLOUD_CONFIG = (v4: string, v6: string, extra = ''): string =>
  [
    '#cloud-config',
    'bootcmd:',
    '  - - /bin/sh',
    '    - -c',
    '    - |',
    "      /usr/sbin/iptables-restore <<'EOF4'",
    ...v4.trimEnd().split('\n').map((l) => `      ${l}`),
    '      EOF4',
    "      /usr/sbin/ip6tables-restore <<'EOF6'",
    ...v6.trimEnd().split('\n').map((l) => `      ${l}`),
    '      EOF6',
    'write_files:',
    '  - path: /etc/iptables/rules.v4',
    '    content: |',
    ...v4.trimEnd().split('\n').map((l) => `      ${l}`),
    '  - path: /etc/iptables/rules.v6',
    '    content: |',
    ...v6.trimEnd().split('\n').map((l) => `      ${l}`),
    extra,
  ].join('\n');

describe('user-data reader', () => {
  const v4 = TABLE('-A INPUT -p tcp --dport 22 -j ACCEPT');
  const v6 = TABLE('');

  it('decodes plain and gzip-compressed base64 and finds both tables', () => {
    const text = CLOUD_CONFIG(v4, v6);
    for (const raw of [Buffer.from(text), zlib.gzipSync(Buffer.from(text))]) {
      const d = decodeUserData({ base64: raw.toString('base64') });
      expect(d.text).toBe(text);
      const wall = readHostWall(d.text);
      expect(wall.problems).toEqual([]);
      expect(wall.tables[4]?.text).toBe(v4);
      expect(wall.tables[6]?.text).toBe(v6);
    }
    expect(() => decodeUserData({ base64: '${filebase64("x")}' })).toThrow(/Terraform expression/);
  });

  it('reports a bootcmd copy that differs, and a missing table', () => {
    const differs = CLOUD_CONFIG(v4, v6).replace(/(bootcmd:[\s\S]*?)--dport 22/, '$1--dport 23');
    expect(readHostWall(differs).problems.join('\n')).toMatch(/bootcmd's first-boot copy of the IPv4 table differs from \/etc\/iptables\/rules.v4 \(line 5: "-A INPUT -p tcp --dport 23 -j ACCEPT" vs "-A INPUT -p tcp --dport 22 -j ACCEPT"\)/);
    const noV6 = ['#cloud-config', 'write_files:', '  - path: /etc/iptables/rules.v4', '    content: |', ...v4.trimEnd().split('\n').map((l) => `      ${l}`)].join('\n');
    expect(readHostWall(noV6).problems.join('\n')).toMatch(/ships no IPv6 table .* IPv6 is unfiltered/);
  });

  it('collects ipset definitions from write_files', () => {
    const wall = readHostWall(CLOUD_CONFIG(v4, v6, '  - path: /etc/iptables/ipsets\n    content: |\n      create ok hash:net family inet6\n      add ok 2001:db8::/48\n'));
    expect(wall.ipsets.get('ok')?.family).toBe(6);
    expect(wall.ipsetScript).toBe('create ok hash:net family inet6\nadd ok 2001:db8::/48\n');
  });
});

describe('Terraform reader', () => {
  const cc = CLOUD_CONFIG(TABLE(''), TABLE(''));
  const tf = {
    resource: {
      aws_security_group: {
        a: {
          ingress: [{ protocol: '-1', from_port: 0, to_port: 0, cidr_blocks: ['10.0.0.0/8'], ipv6_cidr_blocks: ['2001:db8::/32'], description: 'inline all' }],
          egress: [{ protocol: 'tcp', from_port: 1024, to_port: 2048, cidr_blocks: ['0.0.0.0/0'] }],
        },
        b: { tags: { 'twinwall:host-cidrs': '10.9.0.0/16' } },
      },
      aws_security_group_rule: {
        r1: { type: 'ingress', security_group_id: '${aws_security_group.b.id}', protocol: 'icmp', from_port: 8, to_port: -1, cidr_blocks: ['192.0.2.0/24'] },
        r2: { type: 'ingress', security_group_id: '${aws_security_group.b.id}', protocol: 'tcp', from_port: 22, to_port: 22, source_security_group_id: '${aws_security_group.b.id}' },
      },
      aws_vpc_security_group_egress_rule: {
        e1: { security_group_id: '${aws_security_group.b.id}', ip_protocol: 'udp', from_port: 53, to_port: 53, referenced_security_group_id: '${aws_security_group.other.id}', tags: hostCidrsTags(['10.2.0.0/24', '2001:db8:2::/48']) },
        e2: { security_group_id: '${aws_security_group.b.id}', ip_protocol: '6', from_port: 443, to_port: 443, cidr_ipv6: '::/0' },
      },
      aws_instance: {
        web: { vpc_security_group_ids: ['${aws_security_group.a.id}', '${aws_security_group.b.id}'], user_data_base64: Buffer.from(cc).toString('base64'), tags: { 'twinwall:host': 'web' } },
        stray: { vpc_security_group_ids: ['sg-0123'], user_data: cc },
      },
    },
  };

  it('reads inline blocks, aws_security_group_rule, VPC rule resources, several groups, IPv6, -1 and ranges', () => {
    const hosts = readStack('s', tf);
    const web = hosts.find((h) => h.name === 'web');
    expect(web?.groups).toEqual(['aws_security_group.a', 'aws_security_group.b']);
    const rules = web?.rules ?? [];
    expect(rules.map((r) => [r.address, r.direction, r.protocol, r.fromPort, r.toPort, r.peer?.kind === 'cidr' ? r.peer.text : r.peer?.ref])).toEqual([
      ['aws_security_group.a ingress[0]', 'ingress', 'all', 0, 0, '10.0.0.0/8'],
      ['aws_security_group.a ingress[0]', 'ingress', 'all', 0, 0, '2001:db8::/32'],
      ['aws_security_group.a egress[0]', 'egress', 6, 1024, 2048, '0.0.0.0/0'],
      ['aws_vpc_security_group_egress_rule.e1', 'egress', 17, 53, 53, 'aws_security_group.other'],
      ['aws_vpc_security_group_egress_rule.e2', 'egress', 6, 443, 443, '::/0'],
      ['aws_security_group_rule.r1', 'ingress', 1, 8, -1, '192.0.2.0/24'],
      ['aws_security_group_rule.r2', 'ingress', 6, 22, 22, 'aws_security_group.b'],
    ]);
    // The reference's host-side CIDRs come from the recorded tag (rule first, else the group's).
    const e1 = rules.find((r) => r.address.endsWith('e1'));
    expect(e1?.peer?.kind === 'securityGroup' && e1.peer.cidrs?.map((c) => c.text)).toEqual(['10.2.0.0/24', '2001:db8:2::/48']);
    const r2 = rules.find((r) => r.address.endsWith('r2'));
    expect(r2?.peer?.kind === 'securityGroup' && r2.peer.source).toBe('tag twinwall:host-cidrs on aws_security_group.b');
    // ICMP type 8, every code.
    const icmp = ruleRegion(rules.find((r) => r.address.endsWith('r1')) as (typeof rules)[number], 4) as Region;
    expect(icmp.boxes[0].get('point').equals(IntervalSet.of(8 * 256, 8 * 256 + 255))).toBe(true);
    expect(icmp.boxes[0].get('remote').equals(IntervalSet.of(v4('192.0.2.0'), v4('192.0.2.255')))).toBe(true);
  });

  it('reports a group defined elsewhere as undecidable, never as agreement', () => {
    const stray = readStack('s', tf).find((h) => h.name === 'stray');
    expect(stray?.problems).toEqual(['security group sg-0123 is not defined in this stack, so its rules are unknown']);
    const report = checkStacks([{ name: 's', json: tf }]);
    const check = report.hosts.find((h) => h.host.name === 'stray');
    expect(check?.findings.length).toBeGreaterThan(0);
    // …and without a host-wall record, its host-only part cannot be checked either.
    expect(check?.findings.every((f) => f.kind === 'undecidable' || f.kind === 'host-only-part')).toBe(true);
    expect(check?.findings.filter((f) => f.kind === 'host-only-part').map((f) => f.text)).toEqual([expect.stringMatching(/^no host-wall record \(tag twinwall:host-wall on the host's security group\): the host-only part .* cannot be checked against the policy$/)]);
  });

  it('reads launch templates and instances behind network interfaces', () => {
    const json = {
      resource: {
        aws_security_group: { g: {}, h: {} },
        aws_vpc_security_group_ingress_rule: { r: { security_group_id: '${aws_security_group.g.id}', ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr_ipv4: '192.0.2.0/24' } },
        aws_launch_template: { lt: { network_interfaces: [{ security_groups: ['${aws_security_group.g.id}'] }], user_data: Buffer.from(cc).toString('base64') } },
        aws_network_interface: { eni: { security_groups: ['${aws_security_group.g.id}'] } },
        aws_network_interface_sg_attachment: { extra: { network_interface_id: '${aws_network_interface.eni.id}', security_group_id: '${aws_security_group.h.id}' } },
        aws_instance: { vm: { network_interface: [{ network_interface_id: '${aws_network_interface.eni.id}', device_index: 0 }], user_data: cc } },
      },
    };
    const hosts = readStack('s', json);
    expect(hosts.map((h) => [h.address, h.groups, h.rules.map((r) => r.address), h.problems])).toEqual([
      ['aws_launch_template.lt', ['aws_security_group.g'], ['aws_vpc_security_group_ingress_rule.r'], []],
      ['aws_instance.vm', ['aws_security_group.g', 'aws_security_group.h'], ['aws_vpc_security_group_ingress_rule.r'], []],
    ]);
    // Both ship DROP-everything tables; the group admits SSH from 192.0.2.0/24: one difference
    // each, and no host-wall record to check the host-only part with.
    for (const h of checkStacks([{ name: 's', json }]).hosts) {
      expect(h.findings.map((f) => f.text)).toEqual([
        expect.stringMatching(/^no host-wall record/),
        expect.stringMatching(/^ingress tcp\/22 from 192\.0\.2\.0\/24: the network wall admits it \(aws_vpc_security_group_ingress_rule\.r\), the host wall does not$/),
      ]);
    }
  });

  it('round-trips the host-cidrs record through tags, splitting long lists', () => {
    const cidrs = Array.from({ length: 40 }, (_, i) => `10.${i}.0.0/16`);
    const tags = hostCidrsTags(cidrs);
    expect(Object.keys(tags).length).toBeGreaterThan(1);
    expect(Object.values(tags).every((v) => v.length <= 256 && /^[0-9a-f.:/ ]+$/.test(v))).toBe(true);
    expect(readHostCidrsTags(tags)).toEqual(cidrs);
  });
});
