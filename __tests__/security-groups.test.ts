/**
 * The network wall: security-group rule specs rendered from a host policy. Unit tests on
 * hand-picked policies, behaviour tests (ids stable under change, the specs admit what the policy
 * admits), the quota boundary, every TW22x error of this renderer, and a golden file per fixture.
 */
import * as fc from 'fast-check';
import { AWS_LINK_LOCAL, Cidr, ERROR_CODES, Flow, HostPolicy, Peer, Port, customRole, dnsClient, mailServer, ntpClient, webServer } from '../lib';
import { parseAddress } from '../lib/address';
import { ruleAdmits } from '../lib/admits';
import type { Probe } from '../lib/admits';
import { SG_RULES_PER_DIRECTION_PER_FAMILY, SgRuleSpec, countSecurityGroupRules, renderSecurityGroupRules } from '../lib/render/security-groups';
import { SG_DESCRIPTION_CHARSET, awsDescription } from '../lib/text';
import { expectGolden } from './support/golden';
import { ROLE_FIXTURES, sampleServer } from './support/fixtures';
import { caught } from './support/caught';

const specs = (p: HostPolicy) => renderSecurityGroupRules(p).rules;
const byId = (p: HostPolicy) => new Map(specs(p).map((s) => [s.id, s]));
const custom = (name: string, flows: Flow[], options = {}) => HostPolicy.compose('h', [customRole(name, flows)], options);

/** A CDK for Terraform string token, as `otherGroup.id` looks at synth time. */
const TOKEN = '${TfToken[TOKEN.12]}';

describe('rule specs', () => {
  it('renders the sample server: one spec per rule and CIDR, IPv4 and IPv6 apart, content-derived ids', () => {
    const ids = specs(sampleServer()).map((s) => s.id);
    expect(ids).toEqual([
      'ingress-tcp-22-from-192-0-2-0-24',
      'ingress-tcp-25-from-0-0-0-0-0',
      'ingress-tcp-80-from-0-0-0-0-0',
      'ingress-tcp-443-from-0-0-0-0-0',
      'ingress-tcp-22-from-2001-db8-a-x-48',
      'ingress-tcp-25-from-x-0',
      'ingress-tcp-80-from-x-0',
      'ingress-tcp-443-from-x-0',
      'egress-tcp-25-to-0-0-0-0-0',
      'egress-tcp-53-to-198-51-100-53-32',
      'egress-tcp-53-to-198-51-100-54-32',
      'egress-udp-53-to-198-51-100-53-32',
      'egress-udp-53-to-198-51-100-54-32',
      'egress-tcp-25-to-x-0',
    ]);
    expect(byId(sampleServer()).get('egress-tcp-25-to-0-0-0-0-0')).toEqual({
      id: 'egress-tcp-25-to-0-0-0-0-0',
      direction: 'egress',
      ipProtocol: 'tcp',
      fromPort: 25,
      toPort: 25,
      cidrIpv4: '0.0.0.0/0',
      description: 'mailServer: smtp - delivering mail to other mail servers',
      quotaCost: { 4: 1, 6: 0 },
      because: [{ role: 'mailServer', service: 'smtp', reason: 'delivering mail to other mail servers' }],
    });
    expect(byId(sampleServer()).get('ingress-tcp-22-from-2001-db8-a-x-48')).toMatchObject({ cidrIpv6: '2001:db8:a::/48', fromPort: 22, toPort: 22 });
  });

  it('maps protocols and ports as AWS expects (ICMP type in fromPort, code in toPort, -1 for all)', () => {
    // One policy per flow: mixing "all ICMP" from one network with one ICMP type from another
    // makes the core's normalisation split the ICMP axis per code (see the report), which is
    // beside the point here.
    const flows = [
      Flow.egress(Port.allTraffic(), Peer.ipv4('10.1.0.0/16'), 'everything to the backup network'),
      Flow.egress(Port.allTcp(), Peer.ipv4('10.2.0.0/16'), 'every TCP port'),
      Flow.egress(Port.udpRange(33434, 33534), Peer.ipv4('10.3.0.0/16'), 'traceroute'),
      Flow.ingress(Port.icmpType(8), Peer.ipv4('10.4.0.0/16'), 'ping'),
      Flow.ingress(Port.icmpTypeAndCode(3, 4), Peer.ipv4('10.5.0.0/16'), 'fragmentation needed'),
      Flow.ingress(Port.allIcmp(), Peer.ipv4('10.6.0.0/16'), 'all ICMP'),
      Flow.ingress(Port.allIcmpv6(), Peer.ipv6('2001:db8:6::/48'), 'all ICMPv6'),
      Flow.ingress(Port.icmpv6Type(128), Peer.ipv6('2001:db8:7::/48'), 'ping6'),
    ];
    const got = new Map(flows.flatMap((f) => specs(custom('probe', [f]))).map((s) => [s.id, s]));
    const ports = (id: string) => {
      const s = got.get(id) as SgRuleSpec;
      expect(s).toBeDefined();
      return [s.ipProtocol, s.fromPort, s.toPort];
    };
    expect(ports('egress-all-to-10-1-0-0-16')).toEqual(['-1', undefined, undefined]);
    expect('fromPort' in (got.get('egress-all-to-10-1-0-0-16') as object)).toBe(false);
    expect(ports('egress-tcp-all-to-10-2-0-0-16')).toEqual(['tcp', 0, 65535]);
    expect(ports('egress-udp-33434-33534-to-10-3-0-0-16')).toEqual(['udp', 33434, 33534]);
    expect(ports('ingress-icmp-type-8-from-10-4-0-0-16')).toEqual(['icmp', 8, -1]);
    expect(ports('ingress-icmp-type-3-code-4-from-10-5-0-0-16')).toEqual(['icmp', 3, 4]);
    expect(ports('ingress-icmp-all-from-10-6-0-0-16')).toEqual(['icmp', -1, -1]);
    expect(ports('ingress-icmpv6-all-from-2001-db8-6-x-48')).toEqual(['icmpv6', -1, -1]);
    expect(ports('ingress-icmpv6-type-128-from-2001-db8-7-x-48')).toEqual(['icmpv6', 128, -1]);
  });

  it.each(Object.keys(ROLE_FIXTURES))('%s: every spec has exactly one target, a valid id and a valid description', (name) => {
    const list = specs(ROLE_FIXTURES[name]());
    expect(new Set(list.map((s) => s.id)).size).toBe(list.length);
    for (const s of list) {
      const targets = [s.cidrIpv4, s.cidrIpv6, s.referencedSecurityGroupId, s.prefixListId].filter((t) => t !== undefined);
      expect(targets).toHaveLength(1);
      expect(s.id).toMatch(/^(ingress|egress)-[a-z0-9][A-Za-z0-9-]*[A-Za-z0-9]$/);
      expect(s.description).toMatch(SG_DESCRIPTION_CHARSET);
      expect(s.description.length).toBeGreaterThan(0);
      expect(s.description.length).toBeLessThanOrEqual(255);
      if (s.ipProtocol === '-1') expect([s.fromPort, s.toPort]).toEqual([undefined, undefined]);
      else expect(typeof s.fromPort === 'number' && typeof s.toPort === 'number').toBe(true);
    }
  });

  it('is deterministic and independent of role order', () => {
    const a = HostPolicy.compose('h', [webServer(), mailServer(), dnsClient({ resolvers: [Peer.ipv4('198.51.100.53/32')] })]);
    const b = HostPolicy.compose('h', [dnsClient({ resolvers: [Peer.ipv4('198.51.100.53/32')] }), mailServer(), webServer()]);
    expect(JSON.stringify(renderSecurityGroupRules(a))).toBe(JSON.stringify(renderSecurityGroupRules(b)));
    expect(JSON.stringify(renderSecurityGroupRules(a))).toBe(JSON.stringify(renderSecurityGroupRules(a)));
  });

  it('names every role and service behind a shared rule in its description', () => {
    const p = HostPolicy.compose('h', [webServer(), customRole('healthCheck', [Flow.ingress(Port.tcp(80), Peer.anyIpv4(), 'load balancer health checks')])]);
    expect(byId(p).get('ingress-tcp-80-from-0-0-0-0-0')?.description).toBe('healthCheck: load balancer health checks; webServer: http - serving web pages');
  });
});

describe('ids stay put when the policy changes', () => {
  it('adding a rule that merges with none keeps every other spec and its id', () => {
    const before = byId(sampleServer());
    const after = byId(
      HostPolicy.compose('sample', [
        ...sampleServer().roles,
        customRole('monitoring', [
          Flow.ingress(Port.tcp(9100), Peer.ipv4('10.0.9.0/24'), 'Prometheus scrapes node_exporter'),
          Flow.egress(Port.tcp(443), Peer.ipv6('2001:db8:443::/48'), 'push metrics'),
        ]),
      ]),
    );
    expect(after.size).toBe(before.size + 2);
    for (const [id, spec] of before) expect(after.get(id)).toEqual(spec);
    expect(after.get('ingress-tcp-9100-from-10-0-9-0-24')?.description).toBe('monitoring: Prometheus scrapes node_exporter');
  });

  it('an id is a function of the spec content alone, across random policy changes', () => {
    const base = sampleServer().roles;
    const port = fc.oneof(
      fc.integer({ min: 1, max: 65535 }).map((n) => Port.tcp(n)),
      fc.integer({ min: 1, max: 65535 }).map((n) => Port.udp(n)),
      fc.integer({ min: 0, max: 254 }).map((t) => Port.icmpType(t)),
    );
    const peer = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((n) => Peer.ipv4(`10.0.${n}.0/24`)),
      fc.constantFrom(Peer.anyIpv4(), Peer.ipv4('192.0.2.0/24'), Peer.ipv4('198.51.100.53/32')),
    );
    const flow = fc.tuple(fc.boolean(), port, peer).map(([ingress, pt, pr]) => (ingress ? Flow.ingress(pt, pr, 'random') : Flow.egress(pt, pr, 'random')));
    fc.assert(
      fc.property(fc.array(flow, { minLength: 1, maxLength: 6 }), (flows) => {
        const before = specs(HostPolicy.compose('sample', base));
        const after = specs(HostPolicy.compose('sample', [...base, customRole('extra', flows)]));
        const content = (s: SgRuleSpec) => JSON.stringify({ ...s, id: undefined, description: undefined });
        const idOf = new Map(before.map((s) => [content(s), s.id]));
        for (const s of after) {
          const prior = idOf.get(content(s));
          if (prior !== undefined) expect(s.id).toBe(prior);
        }
        // …and no two different contents ever share an id.
        const seen = new Map<string, string>();
        for (const s of [...before, ...after]) {
          const c = content(s);
          if (seen.has(s.id)) expect(seen.get(s.id)).toBe(c);
          seen.set(s.id, c);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('descriptions', () => {
  it('keep only the characters AWS accepts, and never a Terraform template sequence', () => {
    const d = awsDescription('Prometheus \u2013 node_exporter\u2019s \u201cmetrics\u201d ${var.x} %{if} caf\u00e9 <b> | ~ ?');
    expect(d).toBe('Prometheus - node_exporters metrics $(var.x) (if) cafe b');
    expect(d).toMatch(SG_DESCRIPTION_CHARSET);
    expect(d).not.toMatch(/[$%]\{/);
  });

  it('are cut to 255 characters', () => {
    const d = awsDescription('x'.repeat(400));
    expect(d).toHaveLength(255);
    expect(d.endsWith('...')).toBe(true);
  });

  it('reach the specs sanitised', () => {
    const p = custom('odd', [Flow.egress(Port.tcp(443), Peer.ipv4('203.0.113.0/24'), 'call the \u201cpartner\u201d API \u2192 ${x}')]);
    expect(specs(p)[0].description).toBe('odd: call the partner API $(x)');
  });
});

describe('security-group and prefix-list peers', () => {
  it('references a security group by its (token) id, and takes the rule id from the label', () => {
    const app = Peer.securityGroup(TOKEN, { hostCidrs: ['10.0.2.0/24'], label: 'app tier' });
    const p = HostPolicy.compose('web', [webServer({ upstreams: [{ service: 'http-alt', peers: [app], reason: 'proxy to the app tier' }] })]);
    const spec = byId(p).get('egress-tcp-8080-to-sg-app-tier');
    expect(spec).toEqual({
      id: 'egress-tcp-8080-to-sg-app-tier',
      direction: 'egress',
      ipProtocol: 'tcp',
      fromPort: 8080,
      toPort: 8080,
      referencedSecurityGroupId: TOKEN,
      description: 'webServer: http-alt - proxy to the app tier',
      // The host wall matches the declared CIDRs; AWS counts a reference once in each family.
      hostCidrs: ['10.0.2.0/24'],
      quotaCost: { 4: 1, 6: 1 },
      // Lint and the review read the provenance and the peer's label here, never from the policy.
      because: [{ role: 'webServer', service: 'http-alt', reason: 'proxy to the app tier' }],
      label: 'app tier',
    });
    for (const s of specs(p)) expect(s.id).not.toContain('TfToken');
  });

  it('references a prefix list by id', () => {
    const partners = Peer.prefixList('pl-0123456789abcdef0', { cidrs: ['198.51.100.0/24', '2001:db8:100::/48'], label: 'partners' });
    const p = custom('partnerApi', [Flow.egress(Port.tcp(443), partners, 'partner API')]);
    expect(specs(p)).toEqual([
      {
        id: 'egress-tcp-443-to-pl-partners',
        direction: 'egress',
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        prefixListId: 'pl-0123456789abcdef0',
        description: 'partnerApi: partner API',
        hostCidrs: ['198.51.100.0/24', '2001:db8:100::/48'],
        quotaCost: { 4: 1, 6: 1 },
        because: [{ role: 'partnerApi', reason: 'partner API' }],
        label: 'partners',
      },
    ]);
  });

  it('TW222 SG_PEER_UNLABELLED: a token id without a label of its own', () => {
    const err = caught(() => renderSecurityGroupRules(custom('callApp', [Flow.egress(Port.tcp(8080), Peer.securityGroup(TOKEN, { hostCidrs: ['10.0.2.0/24'] }), 'call the app')])));
    expect(err.code).toBe(ERROR_CODES.SG_PEER_UNLABELLED);
    expect(err.code).toBe('TW222');
    expect(err.message).toContain('TW222 SG_PEER_UNLABELLED');
    expect(err.message).toContain(`the security group peer "${TOKEN}" has no label of its own`);
    expect(err.message).toContain('Fix: give it a label: Peer.securityGroup(app.id, { hostCidrs: ["10.0.2.0/24"], label: "app tier" })');
    const pl = caught(() => renderSecurityGroupRules(custom('partnerApi', [Flow.egress(Port.tcp(443), Peer.prefixList(TOKEN, { cidrs: ['198.51.100.0/24'] }), 'partner API')])));
    expect(pl.message).toContain('the prefix list peer');
    expect(pl.message).toContain('Peer.prefixList(list.id, { cidrs: ["198.51.100.0/24"], label: "partners" })');
  });

  it('TW223 SG_RULE_ID_COLLISION: two groups with one label', () => {
    const err = caught(() =>
      renderSecurityGroupRules(
        custom('callApps', [
          Flow.egress(Port.tcp(8080), Peer.securityGroup('sg-0aaaaaaaaaaaaaaa1', { hostCidrs: ['10.0.2.0/24'], label: 'app' }), 'call app one'),
          Flow.egress(Port.tcp(8080), Peer.securityGroup('sg-0aaaaaaaaaaaaaaa2', { hostCidrs: ['10.0.3.0/24'], label: 'app' }), 'call app two'),
        ]),
      ),
    );
    expect(err.code).toBe('TW223');
    expect(err.message).toContain('TW223 SG_RULE_ID_COLLISION at h');
    expect(err.message).toContain('two security-group rules would both get the id "egress-tcp-8080-to-sg-app" (targets "sg-0aaaaaaaaaaaaaaa1" and "sg-0aaaaaaaaaaaaaaa2")');
    expect(err.message).toContain('Fix: give every security-group and prefix-list peer its own label');
  });
});

describe('AWS link-local services: decided on the host only', () => {
  const [resolver4, resolver6] = [AWS_LINK_LOCAL.dnsResolver[4], AWS_LINK_LOCAL.dnsResolver[6]];

  it('a rule to exactly a link-local service has no spec, only host-only decisions', () => {
    const r = renderSecurityGroupRules(HostPolicy.compose('client', [dnsClient()]));
    expect(r.rules).toEqual([]);
    const ruleDecisions = r.hostOnly.filter((d) => d.origin !== 'option');
    expect(ruleDecisions.map((d) => [d.direction, d.port, d.address, d.service, d.origin, d.access])).toEqual([
      ['egress', 'tcp/53', resolver4, 'dnsResolver', 'exact', 'allow'],
      ['egress', 'udp/53', resolver4, 'dnsResolver', 'exact', 'allow'],
      ['egress', 'tcp/53', resolver6, 'dnsResolver', 'exact', 'allow'],
      ['egress', 'udp/53', resolver6, 'dnsResolver', 'exact', 'allow'],
    ]);
    expect(ruleDecisions[0].because).toEqual([{ role: 'dnsClient', service: 'dns', reason: 'name lookups (log resolution, DNSBL) via declared resolvers' }]);
    expect(ruleDecisions[0].rule).toBe('egress tcp/53 to 169.254.169.253/32');
    expect(ruleDecisions[0].summary).toBe(
      'egress tcp/53 to 169.254.169.253 (Amazon-provided DNS resolver): allowed by the host wall only (dnsClient: dns); security groups never filter it, so it has no security-group rule.',
    );
  });

  it('Amazon Time Sync likewise', () => {
    const r = renderSecurityGroupRules(HostPolicy.compose('clock', [ntpClient()]));
    expect(r.rules).toEqual([]);
    expect(r.hostOnly.filter((d) => d.service === 'timeSync').map((d) => `${d.port} ${d.address}`)).toEqual(['udp/123 169.254.169.123', 'udp/123 fd00:ec2::123']);
  });

  it('a CIDR that partly overlaps them is narrowed when one block still covers the rest', () => {
    const r = renderSecurityGroupRules(custom('odd', [Flow.egress(Port.udp(53), Peer.ipv4('169.254.169.252/31'), 'a resolver next door')]));
    expect(r.rules.map((s) => [s.id, s.cidrIpv4])).toEqual([['egress-udp-53-to-169-254-169-252-32', '169.254.169.252/32']]);
    expect(r.hostOnly.filter((d) => d.origin !== 'option').map((d) => [d.address, d.origin])).toEqual([[resolver4, 'within']]);
  });

  it('a wide CIDR keeps its one spec (AWS ignores the link-local part) and lists what it covers', () => {
    const r = renderSecurityGroupRules(HostPolicy.compose('mail', [mailServer()]));
    expect(r.rules.find((s) => s.id === 'egress-tcp-25-to-0-0-0-0-0')?.cidrIpv4).toBe('0.0.0.0/0');
    const out = r.hostOnly.filter((d) => d.direction === 'egress' && d.origin === 'within');
    // Egress to the metadata service is decided by the instanceMetadata option first (root-only
    // by default), so the SMTP rule does not reach it and it is not listed under the rule.
    expect(out.map((d) => `${d.port} ${d.address} ${d.service}`)).toEqual([
      `tcp/25 ${resolver4} dnsResolver`,
      'tcp/25 169.254.169.123 timeSync',
      `tcp/25 ${resolver6} dnsResolver`,
      'tcp/25 fd00:ec2::123 timeSync',
    ]);
    expect(out[0].summary).toContain('the security-group rule for 0.0.0.0/0 does not apply to it');
  });

  it('with instanceMetadata "all-users" the rules do reach the metadata service, and say so', () => {
    const r = renderSecurityGroupRules(HostPolicy.compose('mail', [mailServer()], { instanceMetadata: 'all-users' }));
    expect(r.hostOnly.filter((d) => d.direction === 'egress' && d.origin === 'within' && d.service === 'instanceMetadata').map((d) => d.address)).toEqual([
      '169.254.169.254',
      'fd00:ec2::254',
    ]);
  });

  it.each([
    ['root-only', 'root-only', 'tcp/80', 'allowed for root (uid 0) only, and every other packet to it dropped,'],
    ['all-users', 'allow', 'tcp/80', 'allowed for every local user'],
    ['none', 'deny', 'all', 'denied to every local process'],
  ] as const)('the instanceMetadata option %s is a host-only decision', (value, access, port, words) => {
    const r = renderSecurityGroupRules(HostPolicy.compose('imds', [ntpClient()], { instanceMetadata: value }));
    const options = r.hostOnly.filter((d) => d.origin === 'option');
    expect(options.map((d) => [d.direction, d.port, d.address, d.service, d.access, d.option])).toEqual([
      ['egress', port, '169.254.169.254', 'instanceMetadata', access, { name: 'instanceMetadata', value }],
      ['egress', port, 'fd00:ec2::254', 'instanceMetadata', access, { name: 'instanceMetadata', value }],
    ]);
    expect(options[0].summary).toBe(`egress ${port} to 169.254.169.254 (instance metadata service): ${words} by the host wall (instanceMetadata "${value}"); security groups never filter it.`);
    expect(r.rules.some((s) => s.cidrIpv4 === '169.254.169.254/32')).toBe(false);
  });
});

/** Does a spec admit the probe? (AWS semantics of one rule.) */
function specAdmits(s: SgRuleSpec, probe: Probe): boolean {
  if (s.direction !== probe.direction) return false;
  if (s.ipProtocol !== '-1') {
    if (s.ipProtocol !== probe.protocol) return false;
    if (s.ipProtocol === 'tcp' || s.ipProtocol === 'udp') {
      if (probe.point < (s.fromPort as number) || probe.point > (s.toPort as number)) return false;
    } else {
      const type = probe.point >> 8;
      const code = probe.point & 0xff;
      if (s.fromPort !== -1 && s.fromPort !== type) return false;
      if (s.toPort !== -1 && s.toPort !== code) return false;
    }
  }
  const r = probe.remote;
  if (s.referencedSecurityGroupId !== undefined) return r.kind === 'securityGroup' && r.id === s.referencedSecurityGroupId;
  if (s.prefixListId !== undefined) return r.kind === 'prefixList' && r.id === s.prefixListId;
  const cidr = Cidr.of((s.cidrIpv4 ?? s.cidrIpv6) as string);
  return r.kind === 'address' && r.family === cidr.family && r.value >= cidr.first && r.value <= cidr.last;
}

describe('the specs admit what the policy admits (outside the link-local services)', () => {
  const linkLocal = new Set(Object.values(AWS_LINK_LOCAL).flatMap((a) => [a[4], a[6]].map((x) => `${parseAddress(x).family}:${parseAddress(x).value}`)));

  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    const policy = ROLE_FIXTURES[name]();
    const list = specs(policy);
    const probes: Probe[] = [];
    const addresses: { family: 4 | 6; value: bigint }[] = [...linkLocal].map((k) => ({ family: Number(k.split(':')[0]) as 4 | 6, value: BigInt(k.split(':')[1]) }));
    for (const rule of policy.rules) {
      for (const c of rule.hostCidrs) for (const v of [c.first - 1n, c.first, c.last, c.last + 1n]) if (v >= 0n) addresses.push({ family: c.family, value: v });
    }
    for (const rule of policy.rules) {
      const protocols = rule.port.protocol === 'all' ? (['tcp', 'udp', 'icmp', 'icmpv6'] as const) : [rule.port.protocol];
      const [lo, hi] = rule.port.span;
      for (const protocol of protocols) {
        for (const point of [lo - 1, lo, hi, hi + 1].filter((x) => x >= 0 && x <= 65535)) {
          for (const a of addresses) probes.push({ direction: rule.direction, protocol, point, remote: { kind: 'address', family: a.family, value: a.value } });
          if (rule.target.kind === 'securityGroup') probes.push({ direction: rule.direction, protocol, point, remote: { kind: 'securityGroup', id: rule.target.groupId } });
          if (rule.target.kind === 'prefixList') probes.push({ direction: rule.direction, protocol, point, remote: { kind: 'prefixList', id: rule.target.prefixListId } });
        }
      }
    }
    expect(probes.length).toBeGreaterThan(0);
    for (const probe of probes) {
      if (probe.remote.kind === 'address' && linkLocal.has(`${probe.remote.family}:${probe.remote.value}`)) continue;
      const policySays = policy.rules.some((r) => ruleAdmits(r, probe));
      const wallSays = list.some((s) => specAdmits(s, probe));
      if (policySays !== wallSays) throw new Error(`${name}: policy ${policySays}, security group ${wallSays} for ${JSON.stringify(probe, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
    }
  });
});

describe('quota: 60 rules per direction per address family, split across up to 5 groups', () => {
  /** n SSH flows from distinct, non-adjacent IPv4 /32s, so normalisation keeps them apart. */
  const v4Hosts = (n: number, direction: 'ingress' | 'egress' = 'ingress') =>
    Array.from({ length: n }, (_, i) => Flow[direction](Port.tcp(22), Peer.ipv4(`10.${1 + (i >> 8)}.${i & 255}.2/32`), 'admin host'));
  const v6Hosts = (n: number, direction: 'ingress' | 'egress' = 'ingress') =>
    Array.from({ length: n }, (_, i) => Flow[direction](Port.tcp(22), Peer.ipv6(`2001:db8:${i.toString(16)}::2/128`), 'admin host'));
  const groups = (p: HostPolicy, options = {}) => renderSecurityGroupRules(p, options).groups;

  /** Every spec in exactly one group, in canonical order within it, and no group over quota. */
  function expectPartition(p: HostPolicy, options = {}): void {
    const r = renderSecurityGroupRules(p, options);
    const placed = r.groups.flatMap((g) => g.rules.map((s) => s.id));
    expect([...placed].sort()).toEqual(r.rules.map((s) => s.id).sort());
    for (const g of r.groups) {
      const order = r.rules.map((s) => s.id).filter((id) => g.rules.some((s) => s.id === id));
      expect(g.rules.map((s) => s.id)).toEqual(order);
      for (const d of ['ingress', 'egress'] as const) for (const f of [4, 6] as const) expect(g.counts[d][f]).toBeLessThanOrEqual(SG_RULES_PER_DIRECTION_PER_FAMILY);
    }
  }

  it('60 IPv4 and 60 IPv6 ingress rules fit one group', () => {
    const p = custom('admins', [...v4Hosts(60), ...v6Hosts(60)]);
    expect(specs(p)).toHaveLength(120);
    expect(countSecurityGroupRules(p)).toEqual({ ingress: { 4: 60, 6: 60 }, egress: { 4: 0, 6: 0 } });
    expect(groups(p).map((g) => g.counts)).toEqual([{ ingress: { 4: 60, 6: 60 }, egress: { 4: 0, 6: 0 } }]);
  });

  it('61 IPv4 ingress rules take a second group; no id changes and nothing is lost', () => {
    expect(SG_RULES_PER_DIRECTION_PER_FAMILY).toBe(60);
    const p60 = custom('admins', [...v4Hosts(60), ...v6Hosts(2)]);
    const p61 = custom('admins', [...v4Hosts(61), ...v6Hosts(2)]);
    expect(groups(p60)).toHaveLength(1);
    const g = groups(p61);
    expect(g.map((x) => x.counts)).toEqual([
      { ingress: { 4: 60, 6: 2 }, egress: { 4: 0, 6: 0 } },
      { ingress: { 4: 1, 6: 0 }, egress: { 4: 0, 6: 0 } },
    ]);
    expect(g[1].rules.map((s) => s.id)).toEqual(['ingress-tcp-22-from-10-1-60-2-32']);
    for (const id of specs(p60).map((s) => s.id)) expect(specs(p61).map((s) => s.id)).toContain(id);
    expectPartition(p61);
  });

  it('egress and IPv6 are counted apart: 60 of each direction and family still fit one group', () => {
    const p = custom('both', [...v4Hosts(60), ...v6Hosts(60), ...v4Hosts(60, 'egress'), ...v6Hosts(60, 'egress')]);
    expect(groups(p)).toHaveLength(1);
    const q = custom('both', [...v4Hosts(60), ...v6Hosts(61, 'egress')]);
    expect(groups(q).map((x) => x.counts)).toEqual([
      { ingress: { 4: 60, 6: 0 }, egress: { 4: 0, 6: 60 } },
      { ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 1 } },
    ]);
  });

  it('counts a security-group reference once in each family', () => {
    const ref = Flow.ingress(Port.tcp(22), Peer.securityGroup('sg-0bbbbbbbbbbbbbbb1', { hostCidrs: ['10.9.0.0/24'], label: 'bastion' }), 'bastion');
    const fits = custom('admins', [...v4Hosts(59), ref]);
    expect(countSecurityGroupRules(fits)).toEqual({ ingress: { 4: 60, 6: 1 }, egress: { 4: 0, 6: 0 } });
    expect(groups(fits)).toHaveLength(1);
    const over = custom('admins', [...v4Hosts(60), ref]);
    expect(groups(over).map((x) => x.counts)).toEqual([
      { ingress: { 4: 60, 6: 0 }, egress: { 4: 0, 6: 0 } },
      { ingress: { 4: 1, 6: 1 }, egress: { 4: 0, 6: 0 } },
    ]);
    expectPartition(over);
  });

  it('counts a prefix list without maxEntries once per entry in each of its families (a lower bound)', () => {
    const list = Peer.prefixList('pl-0ccccccccccccccc1', { cidrs: ['198.51.100.0/26', '198.51.100.128/26', '2001:db8:1::/48'], label: 'offices' });
    const p = custom('admins', [...v4Hosts(58), Flow.ingress(Port.tcp(22), list, 'offices')]);
    expect(countSecurityGroupRules(p)).toEqual({ ingress: { 4: 60, 6: 1 }, egress: { 4: 0, 6: 0 } });
    expect(groups(p)).toHaveLength(1);
    expect(groups(custom('admins', [...v4Hosts(59), Flow.ingress(Port.tcp(22), list, 'offices')]))).toHaveLength(2);
  });

  it('counts a prefix list with maxEntries as that many rules of its family, once per rule referencing it', () => {
    const list = Peer.prefixList('pl-0ccccccccccccccc2', { cidrs: ['198.51.100.0/26', '198.51.100.128/26'], label: 'partners', maxEntries: 20 });
    expect(list.maxEntries).toBe(20);
    const two = [Flow.ingress(Port.tcp(22), list, 'partners'), Flow.ingress(Port.tcp(443), list, 'partners')];
    const p = custom('partners', [...v4Hosts(20), ...two]);
    expect(countSecurityGroupRules(p)).toEqual({ ingress: { 4: 60, 6: 0 }, egress: { 4: 0, 6: 0 } });
    expect(groups(p)).toHaveLength(1);
    const q = custom('partners', [...v4Hosts(21), ...two]);
    expect(countSecurityGroupRules(q).ingress[4]).toBe(61);
    const g = groups(q);
    expect(g).toHaveLength(2);
    // The costliest rules are placed first: both list references share the first group.
    expect(g[0].rules.filter((s) => s.prefixListId !== undefined)).toHaveLength(2);
    expect(g[0].counts.ingress[4]).toBe(60);
    expectPartition(q);
    const v6 = Peer.prefixList('pl-0ccccccccccccccc3', { cidrs: ['2001:db8:1::/48'], label: 'partners6', maxEntries: 60 });
    expect(countSecurityGroupRules(custom('p6', [Flow.egress(Port.tcp(443), v6, 'partners')]))).toEqual({ ingress: { 4: 0, 6: 0 }, egress: { 4: 0, 6: 60 } });
  });

  it('TW221 SG_QUOTA_EXCEEDED: one prefix-list rule counting more than 60 fits no group', () => {
    const list = Peer.prefixList('pl-0ccccccccccccccc4', { cidrs: ['198.51.100.0/24'], label: 'partners', maxEntries: 61 });
    const err = caught(() => specs(custom('partners', [Flow.ingress(Port.tcp(443), list, 'partners')])));
    expect(err.code).toBe('TW221');
    expect(err.message).toBe(
      'TW221 SG_QUOTA_EXCEEDED at h: the rule "ingress-tcp-443-from-pl-partners" alone counts as 61 IPv4 ingress rules (a prefix list counts as its max entries), ' +
        'but AWS allows 60 per direction per address family in one security group, so no split can hold it. ' +
        "Fix: lower the prefix list's maxEntries to 60 or less, or split it into several lists.",
    );
  });

  it('300 IPv4 ingress rules fill exactly 5 groups; the 301st is TW261 ENI_QUOTA_EXCEEDED naming the counts', () => {
    const p = custom('admins', v4Hosts(300));
    expect(groups(p).map((g) => g.counts.ingress[4])).toEqual([60, 60, 60, 60, 60]);
    expectPartition(p);
    const err = caught(() => specs(custom('admins', v4Hosts(301))));
    expect(err.code).toBe('TW261');
    expect(err.errorName).toBe('ENI_QUOTA_EXCEEDED');
    expect(err.message).toBe(
      'TW261 ENI_QUOTA_EXCEEDED at h: its network wall needs 6 security groups for its 301 rules (ingress IPv4 301, ingress IPv6 0, egress IPv4 0, egress IPv6 0; ' +
        'at least 6 groups at 60 rules per direction per address family), but a network interface takes at most 5 security groups. ' +
        'Fix: merge peers into fewer, wider CIDRs, put long address lists in a managed prefix list (each reference counts as its max entries), or move roles to a second host.',
    );
  });

  it('1,000 rules per network interface: 1,000 fit in 5 groups, 1,001 do not', () => {
    const p = custom('big', [...v4Hosts(250), ...v6Hosts(250), ...v4Hosts(250, 'egress'), ...v6Hosts(250, 'egress')]);
    expect(groups(p)).toHaveLength(5);
    expectPartition(p);
    const err = caught(() => specs(custom('big', [...v4Hosts(251), ...v6Hosts(250), ...v4Hosts(250, 'egress'), ...v6Hosts(250, 'egress')])));
    expect(err.code).toBe('TW261');
    expect(err.message).toContain(
      'its network wall needs 1001 rules in all (ingress IPv4 251, ingress IPv6 250, egress IPv4 250, egress IPv6 250), but AWS allows 1000 rules per network interface.',
    );
  });

  it('maxSecurityGroups lowers the limit, and is validated', () => {
    const p = custom('admins', v4Hosts(61));
    expect(groups(p, { maxSecurityGroups: 2 })).toHaveLength(2);
    expect(caught(() => groups(p, { maxSecurityGroups: 1 })).message).toContain(
      'its network wall needs 2 security groups for its 61 rules (ingress IPv4 61, ingress IPv6 0, egress IPv4 0, egress IPv6 0; at least 2 groups at 60 rules per direction per address family), but maxSecurityGroups allows 1 security group.',
    );
    const err = caught(() => groups(p, { maxSecurityGroups: 6 }));
    expect(err.message).toBe(
      'TW161 OPTION_INVALID at h: maxSecurityGroups 6 is not a whole number from 1 to 5. Fix: give 1 to 5 (a network interface takes at most 5 security groups), or leave it out.',
    );
  });

  it('TW262 PREFIX_LIST_MAX_ENTRIES: below the entries, above 1,000, or a list of both families', () => {
    const below = caught(() => Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26', '198.51.100.64/26'], label: 'partners', maxEntries: 1 }));
    expect(below.message).toBe(
      'TW262 PREFIX_LIST_MAX_ENTRIES: the prefix list "partners" has maxEntries 1, but it holds 2 entries and AWS allows at most 1000. ' +
        "Fix: give a whole number from 2 to 1000 (the list's max_entries; every rule referencing it counts that many rules).",
    );
    expect(caught(() => Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26'], label: 'partners', maxEntries: 1001 })).code).toBe('TW262');
    expect(caught(() => Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26'], label: 'partners', maxEntries: 2.5 })).code).toBe('TW262');
    expect(caught(() => Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26', '2001:db8::/32'], label: 'partners', maxEntries: 10 })).message).toBe(
      'TW262 PREFIX_LIST_MAX_ENTRIES: the prefix list "partners" has maxEntries 10 but holds IPv4 and IPv6 entries; a managed prefix list has one address family. ' +
        'Fix: split it into an IPv4 and an IPv6 prefix list, each with its own maxEntries.',
    );
  });

  it('one prefix list declared with two maxEntries is a conflict', () => {
    const a = Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26'], label: 'partners', maxEntries: 10 });
    const b = Peer.prefixList('pl-1', { cidrs: ['198.51.100.0/26'], label: 'partners', maxEntries: 20 });
    const err = caught(() => custom('p', [Flow.ingress(Port.tcp(22), a, 'x'), Flow.ingress(Port.tcp(443), b, 'y')]));
    expect(err.message).toContain('TW134 PREFIX_LIST_CONFLICT at h: "partners" is declared with CIDRs [198.51.100.0/26] (maxEntries 10) in one flow and [198.51.100.0/26] (maxEntries 20) in another.');
  });

  it('packing is a function of the policy: the same policy in another order gives the same groups', () => {
    const flows = [...v4Hosts(130), ...v6Hosts(70, 'egress')];
    const a = groups(custom('x', flows)).map((g) => g.rules.map((s) => s.id));
    const b = groups(custom('x', [...flows].reverse())).map((g) => g.rules.map((s) => s.id));
    expect(b).toEqual(a);
    expect(a).toHaveLength(3);
  });
});

describe('golden security-group specs', () => {
  it.each(Object.keys(ROLE_FIXTURES))('%s', (name) => {
    const r = renderSecurityGroupRules(ROLE_FIXTURES[name]());
    expectGolden(`sg/${name}.json`, JSON.stringify(r.rules, null, 2) + '\n');
    expectGolden(`sg/${name}.host-only.json`, JSON.stringify(r.hostOnly, null, 2) + '\n');
  });
});
