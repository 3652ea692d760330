/**
 * The per-host "what each wall admits" table printed by `npm run synth` (lib/summary.ts): it is
 * read back from the renderings, lines the two walls up row by row, and flags any difference that
 * no documented reason explains.
 */
import { Flow, HostPolicy, Peer, Port, customRole, dnsClient } from '../lib';
import { HostRendering, renderHost } from '../lib/render';
import { WallRow, formatHostSummary, summariseHost } from '../lib/report/summary';
import { checkHost } from '../lib/check/compare';
import { artefactOfRendering } from '../lib/check/rendering';
import { ADMIN_LAN, ADMIN_LAN6, RESOLVERS, ROLE_FIXTURES, edgePolicy, sampleServer } from './support/fixtures';

function row(rows: readonly WallRow[], direction: string, traffic: string, remote: string): WallRow | undefined {
  return rows.find((r) => r.direction === direction && r.traffic === traffic && r.remote === remote);
}

describe('summariseHost', () => {
  it.each(Object.keys(ROLE_FIXTURES))('finds the walls of fixture %s in agreement', (fixture) => {
    const rows = summariseHost(renderHost(ROLE_FIXTURES[fixture]()));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.mismatch)).toEqual([]);
  });

  it("lists the sample server's flows on both walls, and instance metadata on the host only", () => {
    const rows = summariseHost(renderHost(sampleServer()));
    expect(row(rows, 'ingress', 'tcp/22', ADMIN_LAN)).toMatchObject({ network: 'yes', host: 'yes', mismatch: false });
    expect(row(rows, 'ingress', 'tcp/22', ADMIN_LAN6)).toMatchObject({ network: 'yes', host: 'yes' });
    expect(row(rows, 'ingress', 'tcp/25', 'any IPv6')).toMatchObject({ network: 'yes', host: 'yes' });
    for (const r of RESOLVERS) {
      expect(row(rows, 'egress', 'udp/53', r)).toMatchObject({ network: 'yes', host: 'yes' });
      expect(row(rows, 'egress', 'tcp/53', r)).toMatchObject({ network: 'yes', host: 'yes' });
    }
    expect(row(rows, 'egress', 'tcp/80', '169.254.169.254/32')).toEqual({
      direction: 'egress',
      traffic: 'tcp/80',
      remote: '169.254.169.254/32',
      network: '-',
      host: 'uid 0 only',
      note: 'AWS never filters instanceMetadata',
      mismatch: false,
    });
    // What the article's server must not send shows up nowhere.
    const egress = rows.filter((r) => r.direction === 'egress').map((r) => r.traffic);
    expect(egress.filter((t) => ['tcp/21', 'udp/1434', 'tcp/443'].includes(t))).toEqual([]);
    expect(rows.filter((r) => r.direction === 'egress' && r.traffic === 'tcp/80' && r.network !== '-')).toEqual([]);
    // Ingress first, then by protocol and port.
    const order = rows.map((r) => r.direction);
    expect(order.lastIndexOf('ingress')).toBeLessThan(order.indexOf('egress'));
  });

  it('marks the link-local resolver as a host-only decision, not a mismatch', () => {
    const rows = summariseHost(renderHost(HostPolicy.compose('client', [dnsClient()])));
    expect(row(rows, 'egress', 'udp/53', '169.254.169.253/32')).toMatchObject({ network: '-', host: 'yes', note: 'AWS never filters dnsResolver', mismatch: false });
    expect(row(rows, 'egress', 'udp/53', 'fd00:ec2::253/128')).toMatchObject({ network: '-', host: 'yes', mismatch: false });
  });

  it('shows instance metadata open to all users when the option says so', () => {
    const rows = summariseHost(renderHost(ROLE_FIXTURES.metadataAllUsers()));
    expect(row(rows, 'egress', 'tcp/80', '169.254.169.254/32')).toMatchObject({ network: '-', host: 'yes' });
  });

  it('lines a security-group reference up with its declared CIDRs, and ICMP with its type', () => {
    const policy = HostPolicy.compose('web', [
      customRole('toApp', [
        Flow.egress(Port.tcp(8080), Peer.securityGroup('sg-0123456789abcdef0', { hostCidrs: ['10.0.2.0/24', '2001:db8:2::/64'], label: 'app tier' }), 'proxy'),
        Flow.ingress(Port.icmpType(8), Peer.ipv4('10.0.9.0/24'), 'ping'),
        Flow.ingress(Port.icmpv6TypeAndCode(128, 0), Peer.ipv6('2001:db8:9::/48'), 'ping6'),
        Flow.egress(Port.udpRange(33434, 33534), Peer.ipv4('10.0.9.0/24'), 'traceroute'),
      ]),
    ]);
    const rows = summariseHost(renderHost(policy));
    expect(row(rows, 'egress', 'tcp/8080', '10.0.2.0/24')).toMatchObject({ network: 'sg app tier', host: 'yes', mismatch: false });
    expect(row(rows, 'egress', 'tcp/8080', '2001:db8:2::/64')).toMatchObject({ network: 'sg app tier', host: 'yes', mismatch: false });
    expect(row(rows, 'ingress', 'icmp 8', '10.0.9.0/24')).toMatchObject({ network: 'yes', host: 'yes' });
    expect(row(rows, 'ingress', 'icmpv6 128/0', '2001:db8:9::/48')).toMatchObject({ network: 'yes', host: 'yes' });
    expect(row(rows, 'egress', 'udp/33434-33534', '10.0.9.0/24')).toMatchObject({ network: 'yes', host: 'yes' });
    expect(rows.filter((r) => r.mismatch)).toEqual([]);
  });

  describe('flags walls that disagree', () => {
    // The iptables wall: the tampering below edits its tables.
    const honest = renderHost(sampleServer(), { hostFirewall: 'iptables' });

    it('when the network wall lacks a rule', () => {
      const ssh = honest.securityGroups.rules.find((s) => s.fromPort === 22 && s.cidrIpv4 === ADMIN_LAN);
      expect(ssh).toBeDefined();
      const tampered: HostRendering = {
        ...honest,
        securityGroups: { ...honest.securityGroups, rules: honest.securityGroups.rules.filter((s) => s !== ssh) },
      };
      expect(row(summariseHost(tampered), 'ingress', 'tcp/22', ADMIN_LAN)).toMatchObject({ network: '-', host: 'yes', note: 'host wall only!', mismatch: true });
      expect(formatHostSummary(tampered)).toContain('!! the walls differ on 1 row(s)');
    });

    it('when the host wall lacks a rule', () => {
      const v4 = honest.iptables.v4
        .split('\n')
        .filter((l) => !(l.startsWith('-A tw-out') && l.includes('--dport 25')))
        .join('\n');
      const tampered: HostRendering = { ...honest, iptables: { ...honest.iptables, v4 } };
      expect(row(summariseHost(tampered), 'egress', 'tcp/25', 'any IPv4')).toMatchObject({ network: 'yes', host: '-', note: 'network wall only!', mismatch: true });
    });
  });
});

describe('formatHostSummary', () => {
  it('prints a header, one aligned line per row, and the fixed behaviour', () => {
    const rendering = renderHost(sampleServer());
    const text = formatHostSummary(rendering);
    const lines = text.split('\n');
    expect(lines[0]).toBe('host sample (webServer, mailServer, sshAdmin, dnsClient)');
    expect(lines[1]).toMatch(/^\s+traffic\s+remote\s+network wall\s+host wall$/);
    const rows = summariseHost(rendering);
    const body = lines.slice(2, 2 + rows.length);
    expect(body.every((l, i) => l.trimStart().startsWith(rows[i].direction === 'ingress' ? 'in ' : 'out '))).toBe(true);
    // Columns line up: every row has its remote where the header has "remote".
    const col = lines[1].indexOf('remote');
    expect(body.every((l, i) => l.indexOf(rows[i].remote) === col)).toBe(true);
    expect(text).toContain('drops packets with a forged source');
    expect(text).toMatch(/user-data: \d+ bytes/);
    expect(text).not.toContain('!!');
    expect(formatHostSummary(renderHost(sampleServer()))).toBe(text);
  });

  it('says so when the host is in audit mode', () => {
    expect(formatHostSummary(renderHost(sampleServer({ audit: true })))).toMatch(/^host sample .*AUDIT MODE/);
  });
});

describe('one verdict: the table is the checker judging the rendering', () => {
  const check = (r: HostRendering) => {
    const { host, wall } = artefactOfRendering(r);
    return checkHost(host, wall);
  };
  // The iptables wall: the tampering below edits its tables (the last test tampers with the nftables wall).
  const honest = renderHost(sampleServer(), { hostFirewall: 'iptables' });

  it.each([
    ['edge', () => renderHost(edgePolicy())],
    ['edge (audit)', () => renderHost(edgePolicy({ audit: true }))],
    ['sample (nftables)', () => renderHost(sampleServer(), { hostFirewall: 'nftables' })],
    ['sample (iptables)', () => renderHost(sampleServer(), { hostFirewall: 'iptables' })],
  ])('%s: the checker finds nothing, and neither does the table', (_name, render) => {
    const r = render();
    expect(check(r).findings).toEqual([]);
    expect(summariseHost(r).filter((x) => x.mismatch)).toEqual([]);
    expect(formatHostSummary(r)).not.toContain('!!');
  });

  it("marks exactly the rows the checker's findings fall on", () => {
    const ssh = honest.securityGroups.rules.find((s) => s.fromPort === 22 && s.cidrIpv4 === ADMIN_LAN);
    const tampered: HostRendering = { ...honest, securityGroups: { ...honest.securityGroups, rules: honest.securityGroups.rules.filter((s) => s !== ssh) } };
    const findings = check(tampered).findings;
    expect(findings.map((f) => f.kind)).toEqual(['host-only']);
    expect(findings[0].text).toMatch(/^ingress tcp\/22 from 192\.0\.2\.0\/24: the host wall admits it/);
    expect(summariseHost(tampered).filter((x) => x.mismatch).map((x) => `${x.direction} ${x.traffic} ${x.remote}`)).toEqual([`ingress tcp/22 ${ADMIN_LAN}`]);
  });

  it('prints the findings no row shows (a host wall that lets forged sources out)', () => {
    const v4 = honest.iptables.v4
      .split('\n')
      .filter((l) => !l.includes('-m addrtype ! --src-type LOCAL'))
      .join('\n');
    const tampered: HostRendering = { ...honest, iptables: { ...honest.iptables, v4 } };
    const kinds = new Set(check(tampered).findings.map((f) => f.kind));
    expect(kinds.has('forged-source')).toBe(true);
    const text = formatHostSummary(tampered);
    expect(text).toMatch(/\n {2}!! twinwall check: egress .*: the host wall lets it out .*; packets with a forged source must be dropped/);
    expect(text).toContain('\n  !! twinwall check: IPv4 host-only part: OUTPUT lacks "source address is not this host (forged)"');
    // None of it is a row's difference: both walls still admit the same new connections from the host's own addresses.
    expect(summariseHost(tampered).filter((x) => x.mismatch)).toEqual([]);
  });

  it('reads the host wall the host ships: an nftables wall without a rule is a difference', () => {
    const nft = renderHost(sampleServer(), { hostFirewall: 'nftables' });
    const text = (nft.nftables as { text: string }).text
      .split('\n')
      .filter((l) => !l.includes('"mailServer/smtp: delivering mail to other mail servers"') || !l.includes('nfproto ipv4'))
      .join('\n');
    const tampered = { ...nft, nftables: { ...nft.nftables, text } } as HostRendering;
    expect(row(summariseHost(tampered), 'egress', 'tcp/25', 'any IPv4')).toMatchObject({ network: 'yes', host: '-', note: 'network wall only!', mismatch: true });
    expect(row(summariseHost(tampered), 'egress', 'tcp/25', 'any IPv6')).toMatchObject({ network: 'yes', host: 'yes', mismatch: false });
  });
});
