/**
 * Unit tests of the checker's parts, on hand-written input (rules twinwall did not write):
 * the iptables-restore parser, the symbolic host-wall model (user chains, jumps, goto/RETURN,
 * negated matches, --dports lists, ipsets, what it cannot decide), the Terraform reader (inline
 * blocks, aws_security_group_rule, several groups per host, IPv6, -1, port ranges, references)
 * and the user-data reader.
 */
import * as zlib from 'zlib';
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
  const doc = parseIptablesRestore(table);
  expect(doc.problems).toEqual([]);
  const family = q.remote.includes(':') ? 6 : 4;
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

describe('iptables-restore parser', () => {
  it('tokenizes double and single quotes and keeps quoted words as values', () => {
    expect(tokenize(`-A INPUT -m comment --comment "a \\"b\\" c" -j LOG --log-prefix '-x: '`).map((w) => w.text)).toEqual([
      '-A', 'INPUT', '-m', 'comment', '--comment', 'a "b" c', '-j', 'LOG', '--log-prefix', '-x: ',
    ]);
  });

  it('splits a rule into modules, options (with negation) and target', () => {
    const r = parseRuleLine('-A tw-in ! -s 10.0.0.0/8 -p tcp -m multiport --dports 22,80:90 -m comment --comment "web" -j ACCEPT');
    expect(r.chain).toBe('tw-in');
    expect(r.options).toEqual([
      { name: '-s', negated: true, args: ['10.0.0.0/8'] },
      { name: '-p', negated: false, args: ['tcp'] },
      { module: 'multiport', name: '--dports', negated: false, args: ['22,80:90'] },
      { module: 'comment', name: '--comment', negated: false, args: ['web'] },
    ]);
    expect(r.target).toEqual({ how: 'jump', name: 'ACCEPT', options: [] });
    expect(r.comment).toBe('web');
  });

  it('reads policies, user chains, -I and reports what iptables-restore would reject', () => {
    const doc = parseIptablesRestore(TABLE(':mine - [0:0]\n-A INPUT -j mine\n-I INPUT 1 -i lo -j ACCEPT\n-A INPUT -j nowhere\n-A INPUT --bogus'));
    const input = doc.tables.get('filter')?.chains.get('INPUT');
    expect(input?.policy).toBe('DROP');
    expect(input?.rules.map((r) => r.text)).toEqual(['-i lo -j ACCEPT', '-j mine', '-j nowhere']);
    expect(doc.problems.map((p) => p.message)).toEqual(['--bogus without a value', 'INPUT rule 3 jumps to nowhere, which is not declared']);
    expect(parseIptablesRestore('*filter\n:INPUT DROP [0:0]\n').problems[0].message).toMatch(/never committed/);
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
    expect(verdict(TABLE('-A INPUT -m recent --rcheck -j DROP', 'ACCEPT'), ssh('192.0.2.1'))).toBe('undecidable');
    expect(verdict(TABLE('-A INPUT -i eth0 -j ACCEPT'), ssh('192.0.2.1'))).toBe('undecidable');
    // ... but a LOG rule with a rate limit cannot change a verdict, and both forks agreeing is a verdict.
    expect(verdict(TABLE('-A INPUT -m limit --limit 1/s -j LOG\n-A INPUT -p tcp -j ACCEPT'), ssh('192.0.2.1'))).toBe('admit');
    expect(verdict(TABLE('-A INPUT -m length --length 0:100 -j ACCEPT', 'ACCEPT'), ssh('192.0.2.1'))).toBe('admit');
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
    expect(check?.findings.every((f) => f.kind === 'undecidable')).toBe(true);
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
    // Both ship DROP-everything tables; the group admits SSH from 192.0.2.0/24: one difference each.
    for (const h of checkStacks([{ name: 's', json }]).hosts) {
      expect(h.findings.map((f) => f.text)).toEqual([expect.stringMatching(/^ingress tcp\/22 from 192\.0\.2\.0\/24: the network wall admits it \(aws_vpc_security_group_ingress_rule\.r\), the host wall does not$/)]);
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
