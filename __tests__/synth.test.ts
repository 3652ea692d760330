/**
 * Synth tests of the FilteredHost construct and the example app: what lands in the Terraform
 * JSON for every role fixture and option, host-to-host references, errors located at the
 * construct path, and rule resources that keep their names when roles are added.
 */
import * as zlib from 'zlib';
// Types of the matchers setup.js registers (toHaveResourceWithProperties …).
import 'cdktf/lib/testing/adapters/jest';
import { App, DefaultTokenResolver, StringConcat, Testing, TerraformStack, Token, Tokenization } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { FilteredHost, FilteredHostProps, TwinwallPrefixList } from '../constructs';
import {
  ERROR_CODES,
  ErrorName,
  Flow,
  HostPolicy,
  Peer,
  Port,
  TwinwallError,
  customRole,
  dnsClient,
  mailServer,
  ntpClient,
  serve,
  sshAdmin,
  webServer,
} from '../lib';
import { HostRenderOptions, HostRendering, SgRuleSpec, UserDataPart, renderFallback, renderHost, renderIptables, renderNftables, renderNftablesFallback, renderSecurityGroupRules, renderUserData } from '../lib/render';
import { DEFAULTS, STACK_NAMES, TwinwallExampleStack, buildApp, environmentConfig, summaryText } from '../main';
import { ADMIN_LAN, APP_TIER, RESOLVERS, ROLE_FIXTURES } from './support/fixtures';

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Synthed {
  readonly json: string;
  readonly tf: Json;
  readonly hosts: Record<string, FilteredHost>;
}

/** Synth `build` in a fresh stack ("stack"), keeping the hosts it returns. */
function synth(build: (scope: Construct) => FilteredHost[]): Synthed {
  const hosts: Record<string, FilteredHost> = {};
  const json = Testing.synthScope((scope) => {
    for (const h of build(scope)) hosts[h.node.id] = h;
  });
  return { json, tf: JSON.parse(json), hosts };
}

function synthHost(id: string, props: FilteredHostProps): Synthed & { host: FilteredHost } {
  const s = synth((scope) => [new FilteredHost(scope, id, props)]);
  return { ...s, host: s.hosts[id] };
}

function resources(tf: Json, type: string): Record<string, Json> {
  return tf.resource?.[type] ?? {};
}

/** The user-data EC2 would receive, decoded back to the cloud-config text. */
function decodeUserData(base64: string): string {
  const raw = Buffer.from(base64, 'base64');
  const gzipped = raw[0] === 0x1f && raw[1] === 0x8b;
  return (gzipped ? zlib.gunzipSync(raw) : raw).toString('utf8');
}

/** A spec as the provider resource's snake_case properties. */
function expectedProperties(spec: SgRuleSpec): Record<string, unknown> {
  const props: Record<string, unknown> = { ip_protocol: spec.ipProtocol, description: spec.description };
  if (spec.fromPort !== undefined) props.from_port = spec.fromPort;
  if (spec.toPort !== undefined) props.to_port = spec.toPort;
  if (spec.cidrIpv4 !== undefined) props.cidr_ipv4 = spec.cidrIpv4;
  if (spec.cidrIpv6 !== undefined) props.cidr_ipv6 = spec.cidrIpv6;
  if (spec.prefixListId !== undefined) props.prefix_list_id = spec.prefixListId;
  return props;
}

function expectTwinwallError(fn: () => unknown, name: ErrorName, path: string): TwinwallError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TwinwallError);
  const err = caught as TwinwallError;
  expect({ code: err.code, name: err.errorName, where: err.path[0] }).toEqual({ code: ERROR_CODES[name], name, where: path });
  expect(err.message).toContain(`${ERROR_CODES[name]} ${name} at ${path}`);
  return err;
}

describe('FilteredHost, per role fixture', () => {
  describe.each(Object.keys(ROLE_FIXTURES))('%s', (fixture) => {
    const policy = ROLE_FIXTURES[fixture]();
    const expected = renderSecurityGroupRules(policy);
    const { json, tf, host } = synthHost('host', { policy, vpcId: VPC });

    it('creates one security group with a description and no inline rules', () => {
      expect(json).toHaveResourceWithProperties(SecurityGroup, { vpc_id: VPC, description: `twinwall network wall of host ${policy.name}` });
      const groups = Object.values(resources(tf, 'aws_security_group'));
      expect(groups).toHaveLength(1);
      expect(groups[0]).not.toHaveProperty('ingress');
      expect(groups[0]).not.toHaveProperty('egress');
      expect(groups[0].tags['twinwall:roles']).toBe(policy.roles.map((r) => r.name).join(' '));
    });

    it('creates one rule resource per spec, named by the spec id, attached to the group', () => {
      const ingress = expected.rules.filter((s) => s.direction === 'ingress');
      const egress = expected.rules.filter((s) => s.direction === 'egress');
      expect(Object.keys(resources(tf, 'aws_vpc_security_group_ingress_rule'))).toHaveLength(ingress.length);
      expect(Object.keys(resources(tf, 'aws_vpc_security_group_egress_rule'))).toHaveLength(egress.length);
      const groupRef = `\${aws_security_group.${Object.keys(resources(tf, 'aws_security_group'))[0]}.id}`;
      for (const spec of expected.rules) {
        const type = spec.direction === 'ingress' ? VpcSecurityGroupIngressRule : VpcSecurityGroupEgressRule;
        expect(json).toHaveResourceWithProperties(type, { ...expectedProperties(spec), security_group_id: groupRef });
        const child = host.node.findChild(spec.id);
        expect(child).toBeInstanceOf(type);
        const logicalIds = Object.keys(resources(tf, type.tfResourceType));
        expect(logicalIds.filter((k) => k.startsWith(`host_${spec.id}_`))).toHaveLength(1);
      }
      expect([...host.ingressRules, ...host.egressRules]).toHaveLength(expected.rules.length);
    });

    it('exposes the user-data, base64, decoding to the rendered cloud-config (the default backend, nftables)', () => {
      const userData = renderUserData({ nftables: renderNftables(policy).text, fallback: renderNftablesFallback(policy).text }, { host: policy.name });
      // userDataBase64 is a lazy value (resolved at synth, after every grant); its text is the rendering's.
      expect(Token.isUnresolved(host.userDataBase64)).toBe(true);
      expect(Tokenization.resolve(host.userDataBase64, { scope: host, resolver: new DefaultTokenResolver(new StringConcat()) })).toBe(userData.base64);
      expect(host.rendering.userData.base64).toBe(userData.base64);
      expect(decodeUserData(host.rendering.userData.base64)).toBe(userData.cloudConfig);
      expect(host.cloudConfig.startsWith('#cloud-config')).toBe(true);
      expect(host.rendering.userData.base64).not.toMatch(/TfToken|\$\{/);
      // With hostFirewall 'iptables': the iptables tables and their fallback.
      const iptables = synthHost('host', { policy, vpcId: VPC, hostFirewall: 'iptables' }).host;
      expect(iptables.rendering.userData.base64).toBe(renderUserData({ ...renderIptables(policy), fallback: renderFallback(policy) }, { host: policy.name }).base64);
      // No instance asked for, so none made.
      expect(resources(tf, 'aws_instance')).toEqual({});
    });
  });
});

describe('the texts a host does not keep', () => {
  // FilteredHost keeps the user-data's base64 and renders its texts (cloudConfig / document, the
  // host wall's tables) again on their first read: each must be the text renderHost gives for the
  // host's policy and every render option, and the document the very one the kept base64 carries.
  const peers = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24'].map((c) => Peer.ipv4(c));
  const cases: { what: string; props: FilteredHostProps; options: HostRenderOptions }[] = [
    { what: 'the defaults (nftables, lockdown)', props: { roles: [mailServer()], vpcId: VPC }, options: {} },
    {
      what: 'iptables with address sets, the user\'s own parts, audit, onLoadFailure open',
      props: { roles: [sshAdmin({ from: peers })], vpcId: VPC, hostFirewall: 'iptables', ipsetThreshold: 2, audit: true, onLoadFailure: 'open', userDataParts: [UserDataPart.shellScript('#!/bin/sh\necho hello\n')] },
      options: { hostFirewall: 'iptables', ipsetThreshold: 2, userDataParts: [UserDataPart.shellScript('#!/bin/sh\necho hello\n')] },
    },
    { what: 'nftables with sets and two groups at most', props: { roles: [sshAdmin({ from: peers }), webServer()], vpcId: VPC, ipsetThreshold: 2, maxSecurityGroups: 2 }, options: { ipsetThreshold: 2, maxSecurityGroups: 2 } },
  ];
  const wallTexts = (r: HostRendering) => ({ hostFirewall: r.hostFirewall, iptables: r.iptables, fallback: r.fallback, nftables: r.nftables, nftablesFallback: r.nftablesFallback });
  it.each(cases)('$what', ({ props, options }) => {
    const { host } = synthHost('h', props);
    const whole = renderHost(host.policy, options);
    const expected = whole.userData;
    const kept = host.rendering.userData;
    expect(Object.keys(kept)).toEqual(Object.keys(expected));
    expect({ ...kept }).toEqual({ ...expected });
    expect(decodeUserData(kept.base64)).toBe(kept.document);
    expect(host.cloudConfig).toBe(expected.cloudConfig);
    // Every field, the host wall's texts included, in the same order.
    expect(Object.keys(host.rendering)).toEqual(Object.keys(whole));
    expect(wallTexts(host.rendering)).toEqual(wallTexts(whole));
    expect(host.rendering.securityGroups).toEqual(whole.securityGroups);
    expect(Object.isFrozen(host.rendering)).toBe(true);
  });

  it('is the composed policy\'s text on a host with grants', () => {
    const { hosts } = synth((scope) => {
      const db = new FilteredHost(scope, 'db', { roles: [sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })], vpcId: VPC, addresses: ['10.0.3.0/24'], hostFirewall: 'iptables' });
      const app = new FilteredHost(scope, 'app', { roles: [ntpClient()], vpcId: VPC, addresses: [APP_TIER] });
      db.allowFrom(app, Port.tcp(5432), 'the app reads its database');
      return [db, app];
    });
    for (const [h, options] of [[hosts.db, { hostFirewall: 'iptables' }], [hosts.app, {}]] as const) {
      const kept = h.rendering.userData;
      expect(kept.document).toContain('5432');
      expect({ ...kept }).toEqual({ ...renderHost(h.policy, options).userData });
      expect(decodeUserData(kept.base64)).toBe(kept.document);
      expect(wallTexts(h.rendering)).toEqual(wallTexts(renderHost(h.policy, options)));
    }
  });
});

describe('FilteredHost options', () => {
  it('composes roles itself, named after the construct id unless `name` is given', () => {
    const byId = synthHost('mail', { roles: [mailServer()], vpcId: VPC }).host;
    expect(byId.policy.name).toBe('mail');
    const named = synthHost('mailHost', { roles: [mailServer()], vpcId: VPC, name: 'postfix' });
    expect(named.host.policy.name).toBe('postfix');
    expect(named.json).toHaveResourceWithProperties(SecurityGroup, { name_prefix: 'twinwall-postfix-', tags: expect.objectContaining({ Name: 'postfix' }) });
  });

  it('passes audit and instanceMetadata into the policy and so into the user-data', () => {
    const plain = synthHost('h', { roles: [ntpClient()], vpcId: VPC }).host;
    const audit = synthHost('h', { roles: [ntpClient()], vpcId: VPC, audit: true }).host;
    const none = synthHost('h', { roles: [ntpClient()], vpcId: VPC, instanceMetadata: 'none' }).host;
    const all = synthHost('h', { roles: [ntpClient()], vpcId: VPC, instanceMetadata: 'all-users' }).host;
    expect(audit.policy.options).toEqual({ audit: true, instanceMetadata: 'root-only', subnets: [], onLoadFailure: 'lockdown' });
    expect(none.policy.options.instanceMetadata).toBe('none');
    expect(all.policy.options.instanceMetadata).toBe('all-users');
    expect(plain.rendering.iptables.v4).not.toContain('audit');
    expect(decodeUserData(audit.rendering.userData.base64)).toContain('twinwall egress audit');
    expect(decodeUserData(plain.rendering.userData.base64)).toContain('meta skuid 0');
    expect(decodeUserData(all.rendering.userData.base64)).not.toContain('meta skuid 0');
    const hosts = [plain, audit, none, all].map((h) => h.rendering.userData.base64);
    expect(new Set(hosts).size).toBe(4);
  });

  it('passes subnets and onLoadFailure into the policy and so into the host wall and the user-data', () => {
    const routed = synthHost('h', { roles: [ntpClient()], vpcId: VPC, subnets: ['10.0.1.0/24'] }).host;
    expect(routed.policy.options.subnets).toEqual(['10.0.1.0/24']);
    expect(routed.rendering.iptables.v4).toContain('-A OUTPUT -d 10.0.1.1/32 -p udp -m udp --sport 68 --dport 67 ');
    expect(routed.rendering.nftablesFallback?.text).toMatch(/^\tchain output \{\n[^}]*\n\t\tip daddr 10\.0\.1\.1 udp sport 68 udp dport 67 accept/m);
    const routedIptables = synthHost('h', { roles: [ntpClient()], vpcId: VPC, subnets: ['10.0.1.0/24'], hostFirewall: 'iptables' }).host;
    expect(routedIptables.rendering.fallback?.v4).toContain('-A OUTPUT -d 10.0.1.1/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT');
    const open = synthHost('h', { roles: [ntpClient()], vpcId: VPC, onLoadFailure: 'open' }).host;
    expect(open.rendering.fallback).toBeUndefined();
    expect(open.rendering.nftablesFallback).toBeUndefined();
    expect(decodeUserData(open.rendering.userData.base64)).not.toContain('/etc/twinwall/fallback.nft');
    expect(decodeUserData(synthHost('h', { roles: [ntpClient()], vpcId: VPC }).host.rendering.userData.base64)).toContain('/etc/twinwall/fallback.nft');
    const openIptables = synthHost('h', { roles: [ntpClient()], vpcId: VPC, onLoadFailure: 'open', hostFirewall: 'iptables' }).host;
    expect(decodeUserData(openIptables.rendering.userData.base64)).not.toContain('/etc/iptables/fallback.v4');
    expect(decodeUserData(synthHost('h', { roles: [ntpClient()], vpcId: VPC, hostFirewall: 'iptables' }).host.rendering.userData.base64)).toContain('/etc/iptables/fallback.v4');
    expect(() => synthHost('h', { roles: [ntpClient()], vpcId: VPC, onLoadFailure: 'never' as never })).toThrow(/TW161 OPTION_INVALID at .*onLoadFailure "never" is not "lockdown" or "open"/);
    const policy = HostPolicy.compose('p', [ntpClient()]);
    // @ts-expect-error subnets next to a prebuilt policy (JavaScript callers get it at synth)
    expect(() => synthHost('h', { policy, vpcId: VPC, subnets: ['10.0.1.0/24'] })).toThrow(/subnets together with policy/);
  });

  it('adds the tags it is given to the group and the instance', () => {
    const { json } = synthHost('h', { roles: [ntpClient()], vpcId: VPC, tags: { team: 'ops' }, instance: { ...INSTANCE, tags: { tier: 'edge' } } });
    expect(json).toHaveResourceWithProperties(SecurityGroup, { tags: { Name: 'h', team: 'ops', 'twinwall:host': 'h', 'twinwall:roles': 'ntpClient', 'twinwall:host-wall': 'audit=false hostFirewall=nftables instanceMetadata=root-only onLoadFailure=lockdown subnets=' } });
    expect(json).toHaveResourceWithProperties(Instance, { tags: { Name: 'h', team: 'ops', tier: 'edge', 'twinwall:host': 'h' } });
  });

  it('annotates the decisions only the host wall makes', () => {
    const { host } = synthHost('h', { roles: [dnsClient()], vpcId: VPC, instanceMetadata: 'none' });
    const infos = host.node.metadata.filter((m) => m.type === '@cdktf/info').map((m) => String(m.data));
    // The default resolver is link-local: no security-group rule, host wall only.
    expect(infos.some((m) => m.includes('169.254.169.253') && m.includes('host wall only'))).toBe(true);
    expect(infos.some((m) => m.includes('fd00:ec2::253'))).toBe(true);
    expect(infos.some((m) => m.includes('instanceMetadata "none"'))).toBe(true);
    expect(host.rendering.securityGroups.rules).toHaveLength(0);
  });

  describe('the optional aws_instance', () => {
    const { json, tf, host } = synthHost('web', { roles: [webServer(), sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] })], vpcId: VPC, instance: { ...INSTANCE, keyName: 'ops' } });
    const instance = Object.values(resources(tf, 'aws_instance'))[0];

    it('is wired to the group and the user-data, IMDSv2 only, no forwarding, replaced on user-data change', () => {
      const group = Object.keys(resources(tf, 'aws_security_group'))[0];
      expect(json).toHaveResourceWithProperties(Instance, {
        ami: INSTANCE.ami,
        instance_type: INSTANCE.instanceType,
        subnet_id: INSTANCE.subnetId,
        key_name: 'ops',
        source_dest_check: true,
        metadata_options: { http_tokens: 'required', http_endpoint: 'enabled' },
        user_data_replace_on_change: true,
        vpc_security_group_ids: [`\${aws_security_group.${group}.id}`],
        user_data_base64: host.rendering.userData.base64,
      });
      expect(host.instance).toBeInstanceOf(Instance);
    });

    it('never uses raw user_data (Terraform would interpolate ${…} and %{…} inside it)', () => {
      expect(instance).not.toHaveProperty('user_data');
      expect(decodeUserData(instance.user_data_base64)).toBe(host.cloudConfig);
    });

    it('omits what was not given', () => {
      const bare = synthHost('h', { roles: [ntpClient()], vpcId: VPC, instance: INSTANCE });
      const inst = Object.values(resources(bare.tf, 'aws_instance'))[0];
      expect(inst).not.toHaveProperty('key_name');
      expect(inst).not.toHaveProperty('private_ip');
      expect(inst).not.toHaveProperty('associate_public_ip_address');
    });
  });
});

describe('host to host', () => {
  const { json, tf, hosts } = synth((scope) => {
    const app = new FilteredHost(scope, 'app', {
      roles: [customRole('appTier', serve('http-alt', [Peer.ipv4('10.0.1.0/24')], 'requests from the web tier'))],
      vpcId: VPC,
      addresses: [APP_TIER],
    });
    const web = new FilteredHost(scope, 'web', {
      roles: [webServer({ upstreams: [{ service: 'http-alt', peers: [app.asPeer({ label: 'app tier' })], reason: 'proxy to the app tier' }] })],
      vpcId: VPC,
    });
    return [app, web];
  });
  const appGroup = Object.keys(resources(tf, 'aws_security_group')).find((k) => k.startsWith('app_')) as string;
  const webGroup = Object.keys(resources(tf, 'aws_security_group')).find((k) => k.startsWith('web_')) as string;

  it('references the app security group on the network wall', () => {
    expect(json).toHaveResourceWithProperties(VpcSecurityGroupEgressRule, {
      security_group_id: `\${aws_security_group.${webGroup}.id}`,
      referenced_security_group_id: `\${aws_security_group.${appGroup}.id}`,
      ip_protocol: 'tcp',
      from_port: 8080,
      to_port: 8080,
    });
    const egress = Object.entries(resources(tf, 'aws_vpc_security_group_egress_rule')).filter(([k]) => k.startsWith('web_'));
    // The reference is the only way out on 8080: no CIDR rule for the app subnet on the network wall.
    expect(egress.filter(([, r]) => r.to_port === 8080).map(([, r]) => r.cidr_ipv4 ?? r.referenced_security_group_id)).toEqual([
      `\${aws_security_group.${appGroup}.id}`,
    ]);
    expect(hosts.web.node.tryFindChild('egress-tcp-8080-to-sg-app-tier')).toBeInstanceOf(VpcSecurityGroupEgressRule);
  });

  it('matches the app CIDRs on the host wall, IPv4 only', () => {
    const v4 = hosts.web.rendering.iptables.v4.split('\n');
    expect(v4.filter((l) => l.startsWith('-A tw-out') && l.includes(`-d ${APP_TIER}`) && l.includes('--dport 8080'))).toHaveLength(1);
    expect(hosts.web.rendering.iptables.v6).not.toContain('8080');
    expect(hosts.web.cloudConfig).not.toMatch(/TfToken/);
  });

  it('asPeer falls back to the instance private IP, and fails with the host path when it knows no CIDR', () => {
    synth((scope) => {
      const fixed = new FilteredHost(scope, 'fixed', { roles: [ntpClient()], vpcId: VPC, instance: { ...INSTANCE, privateIp: '10.0.2.10' } });
      expect(fixed.asPeer().hostCidrs.map((c) => c.text)).toEqual(['10.0.2.10/32']);
      expect(fixed.asPeer({ hostCidrs: ['10.0.2.0/28'], label: 'fixed' }).label).toBe('fixed');
      const loose = new FilteredHost(scope, 'loose', { roles: [ntpClient()], vpcId: VPC });
      expectTwinwallError(() => loose.asPeer(), 'SG_NO_HOST_CIDR', 'stack/loose');
      expectTwinwallError(() => loose.asPeer({ hostCidrs: ['10.0.2.10/24'] }), 'CIDR_HOST_BITS', 'stack/loose');
      return [fixed, loose];
    });
    expectTwinwallError(
      () => Testing.synthScope((scope) => new FilteredHost(scope, 'badAddr', { roles: [ntpClient()], vpcId: VPC, addresses: ['10.0.2.0'] })),
      'CIDR_NO_MASK',
      'stack/badAddr',
    );
  });
});

describe('errors carry the construct path and the code', () => {
  const at = (props: FilteredHostProps, name: ErrorName, id = 'bad') =>
    expectTwinwallError(() => Testing.synthScope((scope) => new FilteredHost(scope, id, props)), name, `stack/${id}`);

  it('for a host without roles', () => {
    at({ roles: [], vpcId: VPC }, 'ROLE_EMPTY');
    // @ts-expect-error neither roles nor policy (JavaScript callers get the error at synth)
    at({ vpcId: VPC }, 'ROLE_EMPTY');
  });

  it('for a bad host name, or a construct id that is no host name', () => {
    at({ roles: [ntpClient()], vpcId: VPC, name: 'no spaces' }, 'NAME_INVALID');
    at({ roles: [ntpClient()], vpcId: VPC }, 'NAME_INVALID', '1host');
  });

  it('for a role twice', () => {
    const err = at({ roles: [ntpClient(), ntpClient()], vpcId: VPC }, 'ROLE_DUPLICATE');
    // The construct path names the host: the policy's own host segment is not repeated.
    expect(err.path).toEqual(['stack/bad']);
    expect(err.message).toMatch(/^TW122 ROLE_DUPLICATE at stack\/bad: /);
  });

  it('for conflicting or missing props', () => {
    // FilteredHostProps makes roles xor policy a type error; JavaScript callers get it at synth.
    // @ts-expect-error roles together with policy
    at({ roles: [ntpClient()], policy: HostPolicy.compose('p', [ntpClient()]), vpcId: VPC }, 'OPTION_INVALID');
    // @ts-expect-error a policy option next to a prebuilt policy
    at({ policy: HostPolicy.compose('p', [ntpClient()]), vpcId: VPC, audit: true }, 'OPTION_INVALID');
    at({ roles: [ntpClient()], vpcId: '' }, 'OPTION_INVALID');
    at({ roles: [ntpClient()], vpcId: VPC, instance: { ...INSTANCE, ami: '' } }, 'OPTION_INVALID');
    at({ roles: [ntpClient()], vpcId: VPC, instanceMetadata: 'some' as never }, 'OPTION_INVALID');
  });

  it('for a network wall beyond what one network interface takes', () => {
    const many = Array.from({ length: 301 }, (_, i) => Flow.ingress(Port.tcp(1000 + 2 * i), Peer.ipv4('203.0.113.0/24'), `port ${i}`));
    at({ roles: [customRole('many', many)], vpcId: VPC }, 'ENI_QUOTA_EXCEEDED');
    at({ roles: [customRole('many', many.slice(0, 61))], vpcId: VPC, maxSecurityGroups: 1 }, 'ENI_QUOTA_EXCEEDED');
  });

  it('for a security-group peer labelled only by a token', () => {
    expectTwinwallError(
      () =>
        Testing.synthScope((scope) => {
          const group = new SecurityGroup(scope, 'other', { vpcId: VPC, description: 'other' });
          new FilteredHost(scope, 'bad', {
            roles: [customRole('toOther', [Flow.egress(Port.tcp(5432), Peer.securityGroup(group.id, { hostCidrs: ['10.0.3.0/24'], label: group.name }), 'database')])],
            vpcId: VPC,
          });
        }),
      'SG_PEER_UNLABELLED',
      'stack/bad',
    );
  });
});

describe('stable names', () => {
  const roles = () => [webServer(), mailServer(), sshAdmin({ from: [Peer.ipv4(ADMIN_LAN)] }), dnsClient({ resolvers: RESOLVERS.map((r) => Peer.ipv4(r)) })];
  const rules = (tf: Json): Record<string, Json> => ({
    ...resources(tf, 'aws_vpc_security_group_ingress_rule'),
    ...resources(tf, 'aws_vpc_security_group_egress_rule'),
  });

  it('adding a role keeps every existing rule resource, with the same logical id and properties', () => {
    const before = synthHost('sample', { roles: roles(), vpcId: VPC });
    const after = synthHost('sample', {
      roles: [...roles(), ntpClient({ servers: [Peer.ipv4('198.51.100.123/32')] }), customRole('monitoring', [Flow.ingress(Port.tcp(9100), Peer.ipv4('10.0.9.0/24'), 'scrapes')])],
      vpcId: VPC,
    });
    const old = rules(before.tf);
    const now = rules(after.tf);
    expect(Object.keys(old).length).toBeGreaterThan(0);
    for (const [logicalId, resource] of Object.entries(old)) expect(now[logicalId]).toEqual(resource);
    expect(Object.keys(now).length).toBe(Object.keys(old).length + 2);
    // Construct ids survive too, and the group itself only changes its tags.
    for (const r of [...before.host.ingressRules, ...before.host.egressRules]) expect(after.host.node.tryFindChild(r.node.id)).toBeDefined();
    const [g1, g2] = [before, after].map((s) => Object.values(resources(s.tf, 'aws_security_group'))[0]);
    expect({ ...g1, tags: undefined }).toEqual({ ...g2, tags: undefined });
  });

  it('the order of roles does not matter', () => {
    const a = synthHost('sample', { roles: roles(), vpcId: VPC });
    const b = synthHost('sample', { roles: [...roles()].reverse(), vpcId: VPC });
    expect(rules(b.tf)).toEqual(rules(a.tf));
    expect(b.host.rendering.userData.base64).toBe(a.host.rendering.userData.base64);
  });
});

describe('the example app', () => {
  const app = Testing.app();
  const stacks = buildApp(app);
  const synthed = stacks.map((s) => {
    const json = Testing.synth(s);
    return { stack: s, json, tf: JSON.parse(json) };
  });

  const egressOf = (tf: Json, host: string) =>
    Object.entries(resources(tf, 'aws_vpc_security_group_egress_rule'))
      .filter(([k]) => k.startsWith(`${host}_`))
      .map(([, r]) => r);

  it('has the two stacks, each with the provider set for an offline plan and five hosts with instances', () => {
    expect(stacks.map((s) => s.node.id)).toEqual([...STACK_NAMES]);
    for (const { stack, json, tf } of synthed) {
      expect(stack).toBeInstanceOf(TerraformStack);
      expect(json).toHaveProviderWithProperties(AwsProvider, { skip_credentials_validation: true, skip_requesting_account_id: true, skip_metadata_api_check: 'true', skip_region_validation: true });
      expect(stack.hosts.map((h) => h.node.id)).toEqual(['sample', 'resolver', 'web', 'app', 'db']);
      expect(Object.keys(resources(tf, 'aws_security_group'))).toHaveLength(5);
      expect(Object.keys(resources(tf, 'aws_instance'))).toHaveLength(5);
      for (const inst of Object.values(resources(tf, 'aws_instance'))) expect(inst).not.toHaveProperty('user_data');
    }
  });

  it('differs between stacks only in the context values', () => {
    const [staging, production] = synthed.map((s) => s.stack.config);
    expect(staging).toEqual(DEFAULTS.staging);
    expect(production).toEqual(DEFAULTS.production);
    // Production built from staging's values is staging, resource for resource.
    const swapped = new TwinwallExampleStack(Testing.app(), 'production', staging);
    expect(Testing.synth(swapped)).toEqual(synthed[0].json);
    expect(synthed[1].json).not.toEqual(synthed[0].json);
  });

  it("the article's sample server sends SMTP and DNS to the resolvers, nothing else", () => {
    for (const { stack, tf } of synthed) {
      const egress = egressOf(tf, 'sample').map((r) => `${r.ip_protocol}/${r.from_port}-${r.to_port} ${r.cidr_ipv4 ?? r.cidr_ipv6}`);
      const resolvers = stack.config.resolvers;
      expect(egress.sort()).toEqual(
        ['tcp/25-25 0.0.0.0/0', 'tcp/25-25 ::/0', ...resolvers.flatMap((r) => [`tcp/53-53 ${r}`, `udp/53-53 ${r}`])].sort(),
      );
      const sample = stack.hosts[0];
      const v4 = sample.rendering.iptables.v4.split('\n').filter((l) => l.startsWith('-A tw-out'));
      expect(v4.some((l) => /--dport (80|443|21|1434)\b/.test(l))).toBe(false);
      expect(v4.some((l) => l.includes('--dport 25') && !l.includes(' -d '))).toBe(true);
      // SSH, on every host, from the admin networks only.
      const ssh = Object.values(resources(tf, 'aws_vpc_security_group_ingress_rule')).filter((r: Json) => r.from_port === 22);
      expect(ssh.map((r: Json) => r.cidr_ipv4).sort()).toEqual(stack.hosts.flatMap(() => stack.config.adminNetworks).sort());
    }
  });

  it('the resolver answers the VPC only, and the web server reaches only DNS and the app tier', () => {
    for (const { stack, tf } of synthed) {
      const dnsIn = Object.entries(resources(tf, 'aws_vpc_security_group_ingress_rule')).filter(([k]) => k.startsWith('resolver_') && !k.includes('tcp-22'));
      expect(dnsIn.map(([, r]) => r.cidr_ipv4)).toEqual([stack.config.vpcCidr, stack.config.vpcCidr]);
      const web = egressOf(tf, 'web');
      const app = Object.keys(resources(tf, 'aws_security_group')).find((k) => k.startsWith('app_'));
      expect(web.filter((r) => r.referenced_security_group_id !== undefined)).toEqual([
        expect.objectContaining({ ip_protocol: 'tcp', from_port: 8080, to_port: 8080, referenced_security_group_id: `\${aws_security_group.${app}.id}` }),
      ]);
      const rest = web.filter((r) => r.referenced_security_group_id === undefined);
      expect(rest.every((r) => r.from_port === 53 && stack.config.resolvers.includes(r.cidr_ipv4))).toBe(true);
      expect(rest).toHaveLength(2 * stack.config.resolvers.length);
    }
  });

  it('three tiers joined by grants: app admits tcp/8080 from the web host only, db tcp/5432 from the app only, db sends nothing to the Internet', () => {
    for (const { stack, tf } of synthed) {
      const group = (host: string) => `\${aws_security_group.${Object.keys(resources(tf, 'aws_security_group')).find((k) => k.startsWith(`${host}_`))}.id}`;
      const ingressOf = (host: string) =>
        Object.entries(resources(tf, 'aws_vpc_security_group_ingress_rule'))
          .filter(([k]) => k.startsWith(`${host}_`))
          .map(([, r]) => r as Json);
      // No subnet-wide workaround: the only non-SSH way into app is the web host's group.
      expect(ingressOf('app').filter((r) => r.from_port !== 22)).toEqual([
        expect.objectContaining({ ip_protocol: 'tcp', from_port: 8080, to_port: 8080, referenced_security_group_id: group('web'), tags: { 'twinwall:host-cidrs': `${stack.config.webPrivateIp}/32` } }),
      ]);
      expect(ingressOf('db').filter((r) => r.from_port !== 22)).toEqual([
        expect.objectContaining({ ip_protocol: 'tcp', from_port: 5432, to_port: 5432, referenced_security_group_id: group('app'), tags: { 'twinwall:host-cidrs': stack.config.appSubnetCidr } }),
      ]);
      expect(egressOf(tf, 'app').filter((r) => r.referenced_security_group_id !== undefined)).toEqual([
        expect.objectContaining({ from_port: 5432, referenced_security_group_id: group('db') }),
      ]);
      // db: DNS to the VPC resolvers, nothing else.
      expect(egressOf(tf, 'db').map((r) => `${r.ip_protocol}/${r.from_port} ${r.cidr_ipv4 ?? r.cidr_ipv6 ?? r.referenced_security_group_id}`).sort()).toEqual(
        stack.config.resolvers.flatMap((r) => [`tcp/53 ${r}`, `udp/53 ${r}`]).sort(),
      );
      const [app, db] = [stack.hosts[3], stack.hosts[4]];
      const v4 = (h: FilteredHost, chain: string, port: number) => h.rendering.iptables.v4.split('\n').filter((l) => l.startsWith(`-A ${chain}`) && l.includes(`--dport ${port} `));
      expect(v4(app, 'tw-in', 8080)).toEqual([expect.stringContaining(`-s ${stack.config.webPrivateIp}/32 `)]);
      expect(v4(db, 'tw-in', 5432)).toEqual([expect.stringContaining(`-s ${stack.config.appSubnetCidr} `)]);
      expect(v4(app, 'tw-out', 5432)).toEqual([expect.stringContaining(`-d ${stack.config.dataSubnetCidr} `)]);
    }
  });

  it('reads cdktf.json-style context over the defaults, and rejects a bad value with a clear error', () => {
    const custom = new App({ context: { twinwall: { staging: { vpcId: 'vpc-0fedcba987654321f', adminNetworks: ['203.0.113.0/24'] } } } });
    const [staging, production] = buildApp(custom);
    expect(staging.config).toEqual({ ...DEFAULTS.staging, vpcId: 'vpc-0fedcba987654321f', adminNetworks: ['203.0.113.0/24'] });
    expect(production.config).toEqual(DEFAULTS.production);
    expect(Testing.synth(staging)).toHaveResourceWithProperties(SecurityGroup, { vpc_id: 'vpc-0fedcba987654321f' });

    const bad = (context: Json) => () => environmentConfig(new App({ context: { twinwall: { staging: context } } }), 'staging');
    expect(bad({ vpcCidr: 10 })).toThrow(/TW161 OPTION_INVALID.*twinwall\.staging\.vpcCidr/);
    expect(bad({ resolver: ['10.0.0.2/32'] })).toThrow(/unknown key "resolver"/);
    expect(bad({ resolvers: [] })).toThrow(/non-empty list/);
    expect(() => environmentConfig(new App({ context: { twinwall: 'staging' } }), 'staging')).toThrow(/context twinwall "staging" is not an object/);
    expect(() => new TwinwallExampleStack(new App(), 'staging', { ...DEFAULTS.staging, adminNetworks: ['0.0.0.0/0'] })).toThrow(/TW152 SSH_FROM_ANYWHERE at staging\/sample:/);
    expect(() => new TwinwallExampleStack(new App(), 'staging', { ...DEFAULTS.staging, resolvers: ['10.10.0.2/24'] })).toThrow(
      /TW102 CIDR_HOST_BITS at staging\/context twinwall\.staging\.resolvers:/,
    );
    expect(() => new TwinwallExampleStack(new App(), 'production', { ...DEFAULTS.production, vpcCidr: '0.0.0.0/0' })).toThrow(/TW153 OPEN_RESOLVER at production\/resolver:/);
  });

  it('prints a table per host, stack by stack, with the walls in agreement', () => {
    const text = summaryText(stacks);
    expect(text.split('\n').filter((l) => l.startsWith('== stack '))).toEqual(['== stack staging', '== stack production']);
    expect(text.split('\n').filter((l) => l.startsWith('host ')).map((l) => l.split(' ')[1])).toEqual(['sample', 'resolver', 'web', 'app', 'db', 'sample', 'resolver', 'web', 'app', 'db']);
    expect(text).toContain('sg app hosts');
    expect(text).not.toContain('!!');
  });

  it('the cdktf.json context is the one the CLI passes, and it is complete', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cdktfJson = require('../cdktf.json');
    for (const name of STACK_NAMES) {
      expect(Object.keys(cdktfJson.context.twinwall[name]).sort()).toEqual(Object.keys(DEFAULTS[name]).sort());
    }
    const viaJson = buildApp(new App({ context: cdktfJson.context }));
    expect(viaJson.map((s) => s.config)).toEqual(STACK_NAMES.map((n) => cdktfJson.context.twinwall[n]));
  });
});

describe('quota split: several security groups, all attached to the instance', () => {
  const ports = (n: number) => Array.from({ length: n }, (_, i) => Flow.ingress(Port.tcp(1000 + 2 * i), Peer.ipv4('203.0.113.0/24'), `port ${i}`));

  it('61 rules: two groups, each rule in the group the plan says, both groups on the instance', () => {
    const { tf, host } = synthHost('big', { roles: [customRole('many', ports(61))], vpcId: VPC, instance: INSTANCE });
    const groups = resources(tf, 'aws_security_group');
    expect(Object.keys(groups)).toHaveLength(2);
    expect(host.securityGroups).toHaveLength(2);
    expect(host.securityGroup).toBe(host.securityGroups[0]);
    const [first, second] = host.securityGroups.map((g) => g.friendlyUniqueId);
    expect(groups[first].name_prefix).toBe('twinwall-big-');
    expect(groups[first].description).toBe('twinwall network wall of host big');
    expect(groups[second].name_prefix).toBe('twinwall-big-2-');
    expect(groups[second].description).toBe('twinwall network wall of host big, part 2');
    const rules = resources(tf, 'aws_vpc_security_group_ingress_rule');
    expect(Object.keys(rules)).toHaveLength(61);
    const plan = host.rendering.securityGroups.groups;
    expect(plan.map((g) => g.rules.length)).toEqual([60, 1]);
    const planned = new Map(plan.flatMap((g) => g.rules.map((spec) => [spec.id, g.index] as const)));
    expect(host.ingressRules).toHaveLength(61);
    for (const rule of host.ingressRules) {
      const index = planned.get(rule.node.id) as number;
      expect(rules[rule.friendlyUniqueId].security_group_id).toBe(`\${aws_security_group.${host.securityGroups[index].friendlyUniqueId}.id}`);
    }
    expect(plan[1].rules.map((r) => r.id)).toEqual(['ingress-tcp-1120-from-203-0-113-0-24']);
    const instance = Object.values(resources(tf, 'aws_instance'))[0];
    expect(instance.vpc_security_group_ids).toEqual([`\${aws_security_group.${first}.id}`, `\${aws_security_group.${second}.id}`]);
  });

  it('growing past 60 rules keeps every construct id, the first group included', () => {
    const paths = (n: number) => {
      const { host } = synthHost('grow', { roles: [customRole('many', ports(n))], vpcId: VPC });
      return host.node.findAll().map((c) => c.node.path);
    };
    const before = paths(60);
    const after = paths(61);
    for (const p of before) expect(after).toContain(p);
    expect(after.filter((p) => !before.includes(p)).sort()).toEqual(['stack/grow/SecurityGroup2', 'stack/grow/ingress-tcp-1120-from-203-0-113-0-24'].sort());
  });
});

describe('TwinwallPrefixList: an aws_ec2_managed_prefix_list and the peer that references it', () => {
  it('creates the list and counts each referencing rule as its max entries', () => {
    let list: TwinwallPrefixList | undefined;
    const { tf, hosts } = synth((scope) => {
      list = new TwinwallPrefixList(scope, 'partners', { cidrs: ['198.51.100.0/26', '198.51.100.128/26'], maxEntries: 40 });
      return [
        new FilteredHost(scope, 'gw', {
          roles: [customRole('partnerApi', [Flow.ingress(Port.tcp(443), list.peer, 'partner API'), Flow.ingress(Port.tcp(8443), list.peer, 'partner API, test')])],
          vpcId: VPC,
          instance: INSTANCE,
        }),
      ];
    });
    const lists = Object.values(resources(tf, 'aws_ec2_managed_prefix_list'));
    expect(lists).toEqual([
      {
        name: 'partners',
        address_family: 'IPv4',
        max_entries: 40,
        entry: [
          { cidr: '198.51.100.0/26', description: 'twinwall: partners' },
          { cidr: '198.51.100.128/26', description: 'twinwall: partners' },
        ],
        tags: { Name: 'partners' },
      },
    ]);
    // Two rules of 40 each: 80 IPv4 ingress rules as AWS counts them, so two groups.
    const gw = hosts.gw;
    expect(gw.rendering.securityGroups.groups.map((g) => g.counts.ingress[4])).toEqual([40, 40]);
    const rules = Object.values(resources(tf, 'aws_vpc_security_group_ingress_rule'));
    expect(rules.map((r: Json) => r.prefix_list_id)).toEqual([`\${aws_ec2_managed_prefix_list.${(list as TwinwallPrefixList).resource.friendlyUniqueId}.id}`, expect.any(String)]);
    // The host wall matches the list's CIDRs.
    expect(gw.rendering.iptables.v4).toContain('-A tw-in -s 198.51.100.128/26 -p tcp -m tcp --dport 443');
  });

  it('refuses a list of both families, and a maxEntries beyond 60 at the group', () => {
    expectTwinwallError(() => Testing.synthScope((scope) => new TwinwallPrefixList(scope, 'mixed', { cidrs: ['198.51.100.0/26', '2001:db8::/32'] })), 'PREFIX_LIST_MAX_ENTRIES', 'stack/mixed');
    expectTwinwallError(
      () =>
        Testing.synthScope((scope) => {
          const big = new TwinwallPrefixList(scope, 'big', { cidrs: ['198.51.100.0/26'], maxEntries: 100 });
          new FilteredHost(scope, 'gw', { roles: [customRole('api', [Flow.ingress(Port.tcp(443), big.peer, 'api')])], vpcId: VPC });
        }),
      'SG_QUOTA_EXCEEDED',
      'stack/gw',
    );
  });
});
