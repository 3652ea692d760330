/**
 * Lint: every check has a case that triggers it and one that suppresses it with a reason, at
 * synth (the Aspect FilteredHost adds, reporting Annotations) and — for what only artefacts can
 * show, such as rules twinwall did not write — in `twinwall report`.
 */
import { AnnotationMetadataEntryType, Testing, TerraformStack } from 'cdktf';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { SecurityGroupRule } from '@cdktf/provider-aws/lib/security-group-rule';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { FilteredHost, FilteredHostProps, TwinwallLint, TwinwallPrefixList, lintStack, stackJson } from '../constructs';
import { ERROR_CODES, Flow, Peer, Port, customRole, dnsClient, mailServer, ntpClient, serve, sshAdmin, use } from '../lib';
import { LINT_IDS, LINT_REGISTRY, LINT_RULES, LintFinding, LintId, LintSgRule, LintSubject, SUPPRESSION_TAG_PREFIX, lintHost, lintRule } from '../lib/lint';
import * as fs from 'fs';
import * as path from 'path';
import { buildReport } from '../lib/report';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { caught } from './support/caught';
import { cleanUp, freshStack } from './support/review';

afterAll(cleanUp);

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };

type Build = (stack: TerraformStack, suppressions: FilteredHostProps['suppressions']) => FilteredHost;

/** One scenario per lint id: a stack whose host `h` triggers exactly that id (among others, maybe). */
const TRIGGERS: Record<LintId, { what: string; build: Build }> = {
  TWL001: {
    what: 'all traffic out to anywhere',
    build: (s, suppressions) =>
      new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [customRole('backup', [Flow.egress(Port.allTraffic(), Peer.anyIpv4(), 'ship backups wherever the vendor asks')])] }),
  },
  TWL002: {
    what: 'SSH from anywhere (forced)',
    build: (s, suppressions) => new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [sshAdmin({ from: [Peer.anyIpv4()], forceOpenToInternet: true })] }),
  },
  TWL003: {
    what: 'an open recursive resolver written as a custom role',
    build: (s, suppressions) =>
      new FilteredHost(s, 'h', {
        vpcId: VPC,
        suppressions,
        roles: [customRole('resolver', [...serve('dns', [Peer.anywhere()], 'answer anyone'), ...use('dns', [Peer.anywhere()], 'recurse')])],
      }),
  },
  TWL004: {
    what: 'instanceMetadata all-users',
    build: (s, suppressions) => new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [ntpClient()], instanceMetadata: 'all-users' }),
  },
  TWL005: {
    what: 'an IPv6 instance using the group and a launch template whose user-data synth cannot see',
    build: (s, suppressions) => {
      const h = new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [ntpClient()] });
      // (An instance with the group and user-data of its own is refused at synth: TW229.)
      new Instance(s, 'own', { ...INSTANCE, vpcSecurityGroupIds: [h.securityGroup.id], ipv6AddressCount: 1, launchTemplate: { name: 'legacy-template' } });
      return h;
    },
  },
  TWL006: {
    what: 'a hand-added rule without description',
    build: (s, suppressions) => {
      const h = new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [ntpClient()] });
      new VpcSecurityGroupIngressRule(s, 'handmade', { securityGroupId: h.securityGroup.id, ipProtocol: 'tcp', fromPort: 9100, toPort: 9100, cidrIpv4: '10.0.9.0/24' });
      return h;
    },
  },
  TWL007: {
    what: '61 hand-added IPv4 ingress rules on one group',
    build: (s, suppressions) => {
      const h = new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [ntpClient()] });
      for (let i = 0; i < 61; i++) {
        new VpcSecurityGroupIngressRule(s, `scrape${i}`, { securityGroupId: h.securityGroup.id, ipProtocol: 'tcp', fromPort: 9100, toPort: 9100, cidrIpv4: `10.0.${i}.0/24`, description: `monitoring ${i}` });
      }
      return h;
    },
  },
  TWL008: {
    what: 'SMTP delivery to anywhere (mailServer)',
    build: (s, suppressions) => new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [mailServer()] }),
  },
  TWL009: {
    what: 'a hand-added HTTPS egress rule to anywhere',
    build: (s, suppressions) => {
      const h = new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [dnsClient()] });
      new VpcSecurityGroupEgressRule(s, 'updates', { securityGroupId: h.securityGroup.id, ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIpv4: '0.0.0.0/0', description: 'package updates' });
      return h;
    },
  },
  TWL010: {
    what: 'audit mode',
    build: (s, suppressions) => new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [ntpClient()], audit: true }),
  },
  TWL011: {
    what: "Slammer's udp/1434 to anywhere",
    build: (s, suppressions) =>
      new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [customRole('sqlClient', [Flow.egress(Port.udp(1434), Peer.anyIpv4(), 'find SQL Server instances')])] }),
  },
};

function findingsOf(build: Build, suppressions?: FilteredHostProps['suppressions']): { host: FilteredHost; findings: LintFinding[] } {
  const stack = freshStack();
  const host = build(stack, suppressions);
  const mine = lintStack(stack).find((r) => r.host === host);
  if (mine === undefined) throw new Error('the host was not linted');
  return { host, findings: mine.findings };
}

/** The twinwall lint annotations on a construct after synth, by level. */
function annotations(host: FilteredHost): { level: string; text: string }[] {
  Testing.synth(TerraformStack.of(host));
  return host.node.metadata.filter((m) => String(m.data).startsWith('twinwall lint ')).map((m) => ({ level: m.type, text: String(m.data) }));
}

const ANNOTATION_LEVEL = { error: AnnotationMetadataEntryType.ERROR, warning: AnnotationMetadataEntryType.WARN, notice: AnnotationMetadataEntryType.INFO } as const;

describe('lint catalog', () => {
  it('has stable, unique ids and names, each with a level, a title and a fix', () => {
    expect(LINT_IDS).toEqual(['TWL001', 'TWL002', 'TWL003', 'TWL004', 'TWL005', 'TWL006', 'TWL007', 'TWL008', 'TWL009', 'TWL010', 'TWL011']);
    const names = LINT_IDS.map((id) => LINT_RULES[id].name);
    expect(new Set(names).size).toBe(names.length);
    for (const id of LINT_IDS) {
      const r = LINT_RULES[id];
      expect(r.id).toBe(id);
      expect(['error', 'warning', 'notice']).toContain(r.level);
      expect(r.title.length).toBeGreaterThan(10);
      expect(r.fix.length).toBeGreaterThan(10);
      expect(lintRule(r.name)).toBe(r);
    }
  });

  it('is read from the rules: one file per rule, lib/lint/rules/<id>-<name>.ts, holding its row and its check', () => {
    const dir = path.join(__dirname, '..', 'lib', 'lint', 'rules');
    const files = fs.readdirSync(dir).filter((f) => /^twl\d{3}-/.test(f)).sort();
    expect(files).toEqual(LINT_REGISTRY.map((r) => `${r.id.toLowerCase()}-${r.name}.ts`));
    expect(LINT_REGISTRY.map((r) => r.id)).toEqual(LINT_IDS);
    for (const r of LINT_REGISTRY) {
      expect(typeof r.check).toBe('function');
      const { check: _check, ...row } = r;
      void _check;
      expect(LINT_RULES[r.id]).toEqual(row);
    }
  });

  it('names the scanners it mirrors', () => {
    expect(LINT_RULES.TWL001.references).toEqual(['checkov CKV_AWS_382', 'trivy AVD-AWS-0104']);
    expect(LINT_RULES.TWL002.references).toEqual(['checkov CKV_AWS_24', 'checkov CKV_AWS_25', 'trivy AVD-AWS-0107']);
    expect(LINT_RULES.TWL006.references).toEqual(['checkov CKV_AWS_23']);
  });
});

describe.each(LINT_IDS)('%s', (id) => {
  const { what, build } = TRIGGERS[id];
  const level = LINT_RULES[id].level;

  it(`is triggered by ${what}, as a ${level} annotation on the host`, () => {
    const { host, findings } = findingsOf(build);
    const hits = findings.filter((f) => f.id === id);
    expect(hits.length).toBeGreaterThan(0);
    for (const f of hits) {
      expect(f.suppressed).toBeUndefined();
      expect(f.level).toBe(level);
      expect(f.host).toBe('h');
      expect(f.fix).toBe(LINT_RULES[id].fix);
    }
    const notes = annotations(host).filter((a) => a.text.startsWith(`twinwall lint ${id} `));
    expect(notes.length).toBe(hits.length);
    for (const n of notes) {
      expect(n.level).toBe(ANNOTATION_LEVEL[level]);
      expect(n.text).toContain(' Fix: ');
    }
  });

  it('is suppressed with a written reason, which the finding, the annotation and the group tag carry', () => {
    const reason = `reviewed for ${id}: the owner accepts it until the migration ends`;
    const { host, findings } = findingsOf(build, [{ id, reason }]);
    const hits = findings.filter((f) => f.id === id);
    expect(hits.length).toBeGreaterThan(0);
    for (const f of hits) expect(f.suppressed).toEqual({ reason });
    const notes = annotations(host).filter((a) => a.text.startsWith(`twinwall lint ${id} `));
    expect(notes.map((n) => n.level)).toEqual(hits.map(() => AnnotationMetadataEntryType.INFO));
    for (const n of notes) expect(n.text).toContain(`Suppressed: ${reason}`);
    const tags = Testing.synth(TerraformStack.of(host));
    expect(tags).toContain(`"${SUPPRESSION_TAG_PREFIX}${id}": "reviewed for ${id}: the owner accepts it until the migration ends"`);
  });
});

describe('a check that throws', () => {
  it('is a finding under each id it reports ("could not be checked"), never a crash, and the other checks still run', () => {
    // A group rule no reader would produce (a peer without a kind) breaks the rule checks.
    const broken = { source: 'g/r', direction: 'egress', protocol: 'tcp', fromPort: 25, toPort: 25, peer: undefined, because: [] } as unknown as LintSgRule;
    const subject: LintSubject = {
      host: 'h',
      location: 'stack/h',
      groups: [{ name: 'stack/h/SecurityGroup', rules: [broken] }],
      hostWall: { tables: { 4: 'audit', 6: 'enforcing' }, metadata: 'root-only' },
      metadataEndpoint: 'enabled',
      suppressions: [],
    };
    let findings: LintFinding[] = [];
    expect(() => (findings = lintHost(subject))).not.toThrow();
    const failed = findings.filter((f) => f.message.includes('could not be checked'));
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) {
      expect(f.message).toMatch(new RegExp(`^this host could not be checked for ${f.id}: the check failed \\(.+\\); this is a bug in twinwall`));
      expect(f.level).toBe(LINT_RULES[f.id].level);
    }
    // Checks that never touch the rules still judge the host: audit mode is reported.
    expect(findings.filter((f) => f.id === 'TWL010').map((f) => f.message)).toEqual(['the host wall (IPv4) is in audit mode: it logs what it would drop and lets it through, so only the security group filters.']);
  });
});

describe('a rule whose check throws', () => {
  it("is that rule's finding at its level, and every other rule still judges the host", () => {
    const subject: LintSubject = {
      host: 'h',
      location: 'stack/h',
      groups: [],
      hostWall: { tables: { 4: 'audit', 6: 'enforcing' }, metadata: 'all-users' },
      metadataEndpoint: 'enabled',
      suppressions: [],
    };
    const broken = LINT_REGISTRY.map((r) =>
      r.id === 'TWL004'
        ? {
            ...r,
            check: () => {
              throw new Error('boom\nsecond line');
            },
          }
        : r,
    );
    const findings = lintHost(subject, broken);
    expect(findings.filter((f) => f.id === 'TWL004')).toEqual([
      expect.objectContaining({
        level: 'warning',
        location: 'stack/h',
        message: 'this host could not be checked for TWL004: the check failed (boom); this is a bug in twinwall, please report it, and review the host for TWL004 by hand until it is fixed.',
      }),
    ]);
    expect(findings.map((f) => f.id)).toEqual(['TWL004', 'TWL010']);
    // The registry itself finds the metadata reach the broken copy could not judge.
    expect(lintHost(subject).map((f) => f.id)).toEqual(['TWL004', 'TWL010']);
    expect(lintHost(subject).find((f) => f.id === 'TWL004')?.message).toMatch(/^the host wall lets every local user open tcp\/80/);
  });
});

describe('suppressions', () => {
  const stack = () => freshStack();
  it('refuses a suppression without a reason (TW251)', () => {
    const err = caught(() => new FilteredHost(stack(), 'h', { vpcId: VPC, roles: [mailServer()], suppressions: [{ id: 'TWL008', reason: '  ' }] }));
    expect(err.code).toBe(ERROR_CODES.LINT_SUPPRESSION_NO_REASON);
    expect(err.message).toContain('TW251 LINT_SUPPRESSION_NO_REASON at stack/h: the suppression of TWL008 (egress-to-anywhere-justified) has no reason');
    expect(err.message).toContain('Fix: write why this host needs it');
  });

  it('refuses an unknown id (TW252) and a duplicate (TW253)', () => {
    const unknown = caught(() => new FilteredHost(stack(), 'h', { vpcId: VPC, roles: [mailServer()], suppressions: [{ id: 'CKV_AWS_24', reason: 'x' }] }));
    expect(unknown.code).toBe('TW252');
    expect(unknown.message).toContain('use one of TWL001, TWL002');
    const twice = caught(() =>
      new FilteredHost(stack(), 'h', {
        vpcId: VPC,
        roles: [mailServer()],
        suppressions: [
          { id: 'TWL008', reason: 'a' },
          { id: 'TWL008', reason: 'b' },
        ],
      }),
    );
    expect(twice.code).toBe('TW253');
  });

  it('suppresses only the host that asks', () => {
    const s = stack();
    const a = new FilteredHost(s, 'a', { vpcId: VPC, roles: [mailServer()], suppressions: [{ id: 'TWL008', reason: 'relay host' }] });
    const b = new FilteredHost(s, 'b', { vpcId: VPC, roles: [mailServer()] });
    const byHost = new Map(lintStack(s).map((r) => [r.host, r.findings]));
    expect(byHost.get(a)?.every((f) => f.suppressed?.reason === 'relay host')).toBe(true);
    expect(byHost.get(b)?.some((f) => f.id === 'TWL008' && f.suppressed === undefined)).toBe(true);
  });
});

describe('lint at synth', () => {
  it('fails app.synth() on an error finding, naming the id, the rule and the fix', () => {
    const s = freshStack();
    new FilteredHost(s, 'h', { vpcId: VPC, instance: INSTANCE, roles: [customRole('backup', [Flow.egress(Port.allTraffic(), Peer.anyIpv4(), 'ship backups anywhere')])] });
    let message = '';
    try {
      (s.node.scope as unknown as { synth(): void }).synth();
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('[stack/h] twinwall lint TWL001 egress-all-to-anywhere (error) at stack/h/SecurityGroup/egress-all-to-0-0-0-0-0: egress all traffic to 0.0.0.0/0');
    expect(message).toContain('backup: ship backups anywhere');
    expect(message).toContain('Fix: list the services the host sends');
  });

  it('lets warnings and notices through synth', () => {
    const s = freshStack();
    new FilteredHost(s, 'h', { vpcId: VPC, instance: INSTANCE, roles: [mailServer()], audit: true });
    expect(() => (s.node.scope as unknown as { synth(): void }).synth()).not.toThrow();
  });

  it('is added once per stack, however many hosts and explicit additions', () => {
    const s = freshStack();
    new FilteredHost(s, 'a', { vpcId: VPC, roles: [mailServer()] });
    new FilteredHost(s, 'b', { vpcId: VPC, roles: [mailServer()] });
    TwinwallLint.ensure(s);
    const { Aspects } = jest.requireActual('cdktf');
    expect(Aspects.of(s).all.filter((x: unknown) => x instanceof TwinwallLint)).toHaveLength(1);
    const a = s.node.findChild('a') as FilteredHost;
    Testing.synth(s);
    Testing.synth(s);
    expect(a.node.metadata.filter((m) => String(m.data).startsWith('twinwall lint TWL008')).length).toBe(2); // IPv4 and IPv6 rule, once each
  });

  it('reports the justified SMTP egress with its reason, as a notice', () => {
    const { findings } = findingsOf((s) => new FilteredHost(s, 'h', { vpcId: VPC, roles: [mailServer()] }));
    expect(findings.map((f) => `${f.id} ${f.level} ${f.message}`)).toEqual([
      'TWL008 notice egress tcp/25 to 0.0.0.0/0, because mailServer (smtp): delivering mail to other mail servers.',
      'TWL008 notice egress tcp/25 to ::/0, because mailServer (smtp): delivering mail to other mail servers.',
    ]);
  });

  it('counts a referenced prefix list as its maxEntries, as AWS and the renderer do (TWL007 at synth)', () => {
    // Two entries, maxEntries 50: AWS counts 50 rules. With 11 hand-added rules the group holds 61.
    const build = (handmade: number): Build => (s, suppressions) => {
      const list = new TwinwallPrefixList(s, 'partners', { cidrs: ['198.51.100.0/24', '203.0.113.0/24'], maxEntries: 50 });
      const h = new FilteredHost(s, 'h', { vpcId: VPC, suppressions, roles: [customRole('partners', [Flow.ingress(Port.tcp(443), list.peer, 'partner API')])] });
      for (let i = 0; i < handmade; i++) {
        new VpcSecurityGroupIngressRule(s, `scrape${i}`, { securityGroupId: h.securityGroup.id, ipProtocol: 'tcp', fromPort: 9100, toPort: 9100, cidrIpv4: `10.0.${i}.0/24`, description: `monitoring ${i}` });
      }
      return h;
    };
    const over = findingsOf(build(11)).findings.filter((f) => f.id === 'TWL007');
    expect(over.map((f) => f.message)).toEqual(['the group holds 61 IPv4 ingress rules; AWS allows 60 per direction per address family, so the apply fails.']);
    expect(findingsOf(build(10)).findings.filter((f) => f.id === 'TWL007')).toEqual([]);
  });

  it('reads the resources it judges exactly as cdk.tf.json holds them (tokens, nested blocks, overrides)', () => {
    const s = freshStack();
    const h = new FilteredHost(s, 'h', { vpcId: VPC, instance: { ...INSTANCE, tags: { team: 'mail' } }, roles: [mailServer()] });
    const own = new Instance(s, 'own', { ami: INSTANCE.ami, instanceType: 't3.small', subnetId: INSTANCE.subnetId, metadataOptions: { httpEndpoint: 'disabled' } });
    h.attachTo(own);
    own.addOverride('ipv6_address_count', 1);
    own.addOverride('root_block_device.volume_size', 20);
    new SecurityGroupRule(s, 'byHand', { type: 'ingress', securityGroupId: h.securityGroup.id, protocol: 'tcp', fromPort: 22, toPort: 22, cidrBlocks: ['10.0.0.0/8'] });
    // After synth, which composes the host (its rule resources exist from then on).
    const synthesized = JSON.parse(Testing.synth(s)).resource as Record<string, Record<string, unknown>>;
    const read = stackJson(s, new Set()).resource as Record<string, Record<string, unknown>>;
    expect(Object.keys(read).sort()).toEqual(['aws_instance', 'aws_security_group', 'aws_security_group_rule', 'aws_vpc_security_group_egress_rule', 'aws_vpc_security_group_ingress_rule']);
    // Testing.synth leaves out each resource's "//" metadata, which lint does not read.
    const bodies = (byName: Record<string, unknown>) => Object.fromEntries(Object.entries(byName).map(([name, body]) => [name, { ...(body as object), '//': undefined }]));
    for (const type of Object.keys(read)) expect({ type, resources: bodies(read[type]) }).toEqual({ type, resources: synthesized[type] });
  });

  it('finds no error or warning in the example app', () => {
    const { App } = jest.requireActual('cdktf');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { buildApp } = require('../main');
    const app = new App({ outdir: freshStack().node.scope?.node.tryGetContext('outdir') ?? undefined, context: require('../cdktf.json').context });
    const stacks: TerraformStack[] = buildApp(app);
    const all = stacks.flatMap((st) => lintStack(st).flatMap((r) => r.findings));
    expect(all.filter((f) => f.level !== 'notice')).toEqual([]);
    expect([...new Set(all.map((f) => `${f.stack}/${f.host} ${f.id}`))].sort()).toEqual([
      'production/resolver TWL008',
      'production/sample TWL008',
      'staging/resolver TWL008',
      'staging/sample TWL008',
    ]);
  });
});

describe('lint in the report (artefacts, rules twinwall did not write)', () => {
  it('finds a hand-added aws_security_group_rule without description, and the suppression reason from the tags', () => {
    const s = freshStack();
    const h = new FilteredHost(s, 'h', { vpcId: VPC, instance: INSTANCE, roles: [ntpClient()], suppressions: [{ id: 'TWL009', reason: 'vendor agent, tracked in OPS-12' }] });
    new SecurityGroupRule(s, 'legacy', { securityGroupId: h.securityGroup.id, type: 'egress', protocol: 'tcp', fromPort: 8443, toPort: 8443, cidrBlocks: ['0.0.0.0/0'] });
    const json = JSON.parse(Testing.synth(s));
    const { report } = buildReport([{ name: 'stack', json }]);
    const lint = report.stacks[0].hosts[0].lint.map((f) => ({ id: f.id, level: f.level, location: f.location, suppressed: f.suppressed?.reason }));
    expect(lint).toEqual([
      { id: 'TWL006', level: 'warning', location: 'aws_security_group_rule.legacy', suppressed: undefined },
      // Tag values keep letters, digits, spaces and + - = . _ : / @ (what every AWS service accepts).
      { id: 'TWL009', level: 'warning', location: 'aws_security_group_rule.legacy', suppressed: 'vendor agent tracked in OPS-12' },
    ]);
  });

  it('finds an IPv6 instance that ships no IPv6 table, and the metadata service open to everyone', () => {
    const s = freshStack();
    // The iptables wall, whose IPv6 table is a file of its own: the host's user-data with the IPv6
    // table (and, the second time, its fallback too) taken out of write_files and bootcmd.
    const h = new FilteredHost(s, 'h', { vpcId: VPC, roles: [ntpClient()], hostFirewall: 'iptables' });
    const lintOf = (removed: readonly string[]): string[] => {
      const cfg = parseYaml(h.cloudConfig) as { write_files: { path: string }[]; bootcmd?: unknown };
      cfg.write_files = cfg.write_files.filter((f) => !removed.includes(f.path));
      delete cfg.bootcmd;
      const json = JSON.parse(synthed);
      json.resource.aws_instance.box.user_data_base64 = Buffer.from(`#cloud-config\n${stringifyYaml(cfg)}`).toString('base64');
      const { report } = buildReport([{ name: 'stack', json }]);
      return report.stacks[0].hosts[0].lint.map((f) => `${f.id}: ${f.message}`);
    };
    new Instance(s, 'box', { ...INSTANCE, vpcSecurityGroupIds: [h.securityGroup.id], ipv6AddressCount: 2, userDataBase64: h.userDataBase64 });
    // Synth refuses another user-data (TW229), so the artefact is edited after synth.
    const synthed = Testing.synth(s);
    const keptFallback = lintOf(['/etc/iptables/rules.v6']);
    expect(keptFallback.find((t) => t.startsWith('TWL005'))).toContain('the host has IPv6 (ipv6_address_count = 2 on aws_instance.box) but its host wall ships no IPv6 table');
    // The IPv6 fallback stays in place (onLoadFailure lockdown): it admits no metadata request.
    expect(keptFallback.filter((t) => t.startsWith('TWL004'))).toEqual([]);
    const nothing = lintOf(['/etc/iptables/rules.v6', '/etc/iptables/fallback.v6']);
    expect(nothing.find((t) => t.startsWith('TWL005'))).toContain('the host has IPv6 (ipv6_address_count = 2 on aws_instance.box) but its host wall ships no IPv6 table');
    // No IPv6 table and no fallback: fd00:ec2::254 is open to every local user.
    expect(nothing.find((t) => t.startsWith('TWL004'))).toContain('the host wall lets every local user open tcp/80 to the instance metadata service');
  });
});
