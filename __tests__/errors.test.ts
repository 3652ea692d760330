/**
 * Every error code of the core, with the text a user sees: the bad value and the fix.
 */
import { Lazy, Token } from 'cdktf';
import {
  Cidr,
  ERROR_CODES,
  ErrorName,
  Flow,
  HostPolicy,
  Peer,
  Port,
  Role,
  customRole,
  dnsClient,
  dnsServer,
  mailServer,
  ntpClient,
  service,
  sshAdmin,
  webServer,
} from '../lib';
import { caught } from './support/caught';

const smtpOut = () => Flow.egress(Port.tcp(25), Peer.anyIpv4(), 'deliver mail');

/** [error name, what triggers it, fragments the message must contain] */
const CASES: [ErrorName, () => unknown, string[]][] = [
  ['CIDR_NO_MASK', () => Peer.ipv4('10.0.0.5'), ['TW101 CIDR_NO_MASK', '"10.0.0.5" has no prefix length', 'Fix: write the mask explicitly, e.g. "10.0.0.5/32"']],
  ['CIDR_HOST_BITS', () => Peer.ipv4('10.0.0.5/24'), ['TW102 CIDR_HOST_BITS', '"10.0.0.5/24" has host bits set', '"10.0.0.0/24" for the whole network', '"10.0.0.5/32" for the single host']],
  ['CIDR_INVALID', () => Cidr.of('10.0.0.256/32'), ['TW103 CIDR_INVALID', '"10.0.0.256"', 'is not an IPv4 address']],
  ['FAMILY_MISMATCH', () => Peer.ipv4('2001:db8::/32'), ['TW104 FAMILY_MISMATCH', '"2001:db8::/32" is an IPv6 CIDR where an IPv4 CIDR is expected', 'Peer.ipv6()']],
  ['PORT_OUT_OF_RANGE', () => Port.tcp(65536), ['TW111 PORT_OUT_OF_RANGE', 'TCP port 65536 is not a port', 'between 0 and 65535']],
  ['PORT_RANGE_REVERSED', () => Port.udpRange(2000, 1000), ['TW112 PORT_RANGE_REVERSED', 'UDP port range 2000-1000 starts above its end', 'write it as 1000-2000']],
  ['PORT_ZERO', () => Port.udp(0), ['TW114 PORT_ZERO', '"udp/0"', 'UDP port 0, which is reserved', 'Port.udp(8080)', 'Port.allUdp()']],
  ['ICMP_OUT_OF_RANGE', () => Port.icmpTypeAndCode(3, 256), ['TW113 ICMP_OUT_OF_RANGE', 'ICMP code 256 is out of range', '0 and 255']],
  ['ROLE_EMPTY', () => customRole('nothing', []), ['TW121 ROLE_EMPTY', 'the role "nothing" has no flows', 'at least one Flow.ingress']],
  ['ROLE_DUPLICATE', () => HostPolicy.compose('web1', [webServer(), webServer()]), ['TW122 ROLE_DUPLICATE at web1', 'role name "webServer" is used twice', '{ name: "webServer2" }']],
  ['NAME_INVALID', () => HostPolicy.compose('my host', [ntpClient()]), ['TW123 NAME_INVALID', 'host name "my host" is not a short identifier', 'a letter, then letters, digits']],
  ['REASON_MISSING', () => Flow.egress(Port.tcp(443), Peer.anyIpv4(), '  '), ['TW124 REASON_MISSING', 'egress flow tcp/443 to any IPv4 has no reason', 'why the host needs it']],
  ['SG_NO_HOST_CIDR', () => Peer.securityGroup('sg-0123456789abcdef0', { hostCidrs: [] }), ['TW131 SG_NO_HOST_CIDR', 'security-group reference "sg-0123456789abcdef0" has no host-side CIDRs', 'Peer.securityGroup(app.id, { hostCidrs: ["10.0.2.0/24"] })']],
  [
    'SG_HOST_CIDR_CONFLICT',
    () =>
      HostPolicy.compose('web', [
        customRole('a', [Flow.egress(Port.tcp(8080), Peer.securityGroup('sg-1', { hostCidrs: ['10.0.2.0/24'], label: 'app' }), 'call app')]),
        customRole('b', [Flow.egress(Port.tcp(8443), Peer.securityGroup('sg-1', { hostCidrs: ['10.0.3.0/24'], label: 'app' }), 'call app over TLS')]),
      ]),
    ['TW132 SG_HOST_CIDR_CONFLICT at web', '"app" is declared with CIDRs [10.0.2.0/24] in one flow and [10.0.3.0/24] in another', 'declare the peer once'],
  ],
  ['PREFIX_LIST_EMPTY', () => Peer.prefixList('pl-0123', { cidrs: [] }), ['TW133 PREFIX_LIST_EMPTY', 'the prefix list "pl-0123" has no CIDRs', 'pass the entries of the prefix list']],
  [
    'PREFIX_LIST_CONFLICT',
    () =>
      HostPolicy.compose('web', [
        customRole('a', [
          Flow.egress(Port.tcp(443), Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/24'] }), 'partners'),
          Flow.egress(Port.tcp(8443), Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/25'] }), 'partners'),
        ]),
      ]),
    ['TW134 PREFIX_LIST_CONFLICT', '[198.51.100.0/24] in one flow and [198.51.100.0/25] in another'],
  ],
  ['UNRESOLVED_TOKEN', () => Peer.ipv4(Token.asString(Lazy.stringValue({ produce: () => '10.0.0.0/16' }))), ['TW141 UNRESOLVED_TOKEN', 'is a Terraform token that is only known at deploy time', 'pass the literal value']],
  ['PEERS_EMPTY', () => sshAdmin({ from: [] }), ['TW151 PEERS_EMPTY', 'sshAdmin from is empty', 'Peer.ipv4("192.0.2.0/24")']],
  ['SSH_FROM_ANYWHERE', () => sshAdmin({ from: [Peer.anyIpv4()] }), ['TW152 SSH_FROM_ANYWHERE', 'SSH from "any IPv4" opens administration', 'forceOpenToInternet: true']],
  ['OPEN_RESOLVER', () => dnsServer({ mode: 'recursive', clients: [Peer.anywhere()] }), ['TW153 OPEN_RESOLVER', '"any IPv4, any IPv6" is an open resolver', 'wider than /8 (IPv4) or /16 (IPv6) is refused']],
  ['UNKNOWN_SERVICE', () => service('gopher'), ['TW154 UNKNOWN_SERVICE', '"gopher" is not in the service catalog', 'use one of dns, http, http-alt']],
  ['OPTION_INVALID', () => HostPolicy.compose('h', [ntpClient()], { instanceMetadata: 'everyone' as never }), ['TW161 OPTION_INVALID', 'instanceMetadata "everyone" is not one of', '"root-only" (default)']],
];

describe('error codes', () => {
  it.each(CASES)('%s: message names the value and the fix', (name, fn, fragments) => {
    const err = caught(fn);
    expect(err.errorName).toBe(name);
    expect(err.code).toBe(ERROR_CODES[name]);
    for (const f of fragments) expect(err.message).toContain(f);
    expect(err.message).toMatch(/ Fix: /);
  });

  it('covers every core error code (TW1xx) exactly once', () => {
    const core = (Object.keys(ERROR_CODES) as ErrorName[]).filter((n) => ERROR_CODES[n].startsWith('TW1'));
    expect(CASES.map(([n]) => n).sort()).toEqual(core.sort());
  });

  it('codes are unique and never reused', () => {
    const codes = Object.values(ERROR_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^TW\d{3}$/);
  });

  it('within() prefixes the location and keeps code, value and fix', () => {
    const err = caught(() => Peer.ipv4('10.0.0.5/24')).within('stack').within('app');
    expect(err.path).toEqual(['app', 'stack']);
    expect(err.message.startsWith('TW102 CIDR_HOST_BITS at app/stack: ')).toBe(true);
    expect(err.value).toBe('10.0.0.5/24');
  });
});

describe('validation details', () => {
  it('rejects IPv4 where IPv6 is expected', () => {
    expect(caught(() => Peer.ipv6('192.0.2.0/24')).message).toContain('is an IPv4 CIDR where an IPv6 CIDR is expected');
  });

  it('rejects host bits in IPv6 and suggests the network', () => {
    expect(caught(() => Peer.ipv6('2001:db8::1/64')).message).toContain('"2001:db8::/64" for the whole network');
  });

  it('rejects prefix lengths beyond the family', () => {
    expect(caught(() => Peer.ipv4('10.0.0.0/33')).message).toContain('prefix is an integer from 0 to 32');
  });

  it('rejects shorthand and zone-scoped addresses', () => {
    expect(caught(() => Peer.cidr('10.1/16')).errorName).toBe('CIDR_INVALID');
    expect(caught(() => Peer.cidr('fe80::1%eth0/128')).errorName).toBe('CIDR_INVALID');
  });

  it('rejects non-integer and negative ports', () => {
    expect(caught(() => Port.tcp(22.5)).errorName).toBe('PORT_OUT_OF_RANGE');
    expect(caught(() => Port.udp(-1)).errorName).toBe('PORT_OUT_OF_RANGE');
  });

  it('rejects number tokens where a port is needed', () => {
    const token = Token.asNumber(Lazy.numberValue({ produce: () => 22 }));
    const err = caught(() => Port.tcp(token));
    expect(err.errorName).toBe('UNRESOLVED_TOKEN');
    expect(err.message).toContain('TCP port');
  });

  it('rejects hand-written Terraform interpolations in CIDRs', () => {
    expect(caught(() => Peer.ipv4('${aws_vpc.main.cidr_block}')).errorName).toBe('UNRESOLVED_TOKEN');
  });

  it('accepts a token as a security-group id (the network wall resolves it) but not in its CIDRs', () => {
    const id = Token.asString(Lazy.stringValue({ produce: () => 'sg-1' }));
    expect(Peer.securityGroup(id, { hostCidrs: ['10.0.2.0/24'], label: 'app' }).hostCidrs.map(String)).toEqual(['10.0.2.0/24']);
    expect(caught(() => Peer.securityGroup('sg-1', { hostCidrs: [id] })).errorName).toBe('UNRESOLVED_TOKEN');
  });

  it('rejects ICMP to an IPv6 peer and ICMPv6 to an IPv4 peer', () => {
    expect(caught(() => Flow.egress(Port.icmpType(8), Peer.anyIpv6(), 'ping')).errorName).toBe('FAMILY_MISMATCH');
    expect(caught(() => Flow.egress(Port.icmpv6Type(128), Peer.anyIpv4(), 'ping')).errorName).toBe('FAMILY_MISMATCH');
  });

  it('refuses SSH from anything wider than /8 unless forced, and records nothing silently', () => {
    expect(caught(() => sshAdmin({ from: [Peer.ipv4('0.0.0.0/1')] })).errorName).toBe('SSH_FROM_ANYWHERE');
    const forced = sshAdmin({ from: [Peer.anyIpv4()], forceOpenToInternet: true });
    expect(forced.flows.map(String)).toEqual(['ingress tcp/22 from any IPv4']);
  });

  it('refuses a recursive resolver for a /7', () => {
    expect(caught(() => dnsServer({ mode: 'recursive', clients: [Peer.ipv4('10.0.0.0/7')] })).errorName).toBe('OPEN_RESOLVER');
  });

  it('rejects an unknown dnsServer mode and mail client service', () => {
    expect(caught(() => dnsServer({ mode: 'forwarding' } as never)).errorName).toBe('OPTION_INVALID');
    expect(caught(() => mailServer({ clientServices: ['pop3' as never] })).errorName).toBe('OPTION_INVALID');
  });

  it('rejects an empty resolver list and an empty host', () => {
    expect(caught(() => dnsClient({ resolvers: [] })).errorName).toBe('PEERS_EMPTY');
    expect(caught(() => HostPolicy.compose('h', [])).errorName).toBe('ROLE_EMPTY');
  });

  it('rejects a role name that is not an identifier', () => {
    expect(caught(() => Role.of('mail server', 'x', [smtpOut()])).errorName).toBe('NAME_INVALID');
  });
});
