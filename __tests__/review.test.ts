/**
 * `twinwall report` and `twinwall diff`, end to end on synthesized artefacts: goldens of both
 * formats on the example app and on a base/head pair whose head sends mail on one new port
 * (tcp/587, anywhere); the JSON report validated against docs/report-schema.json; exit codes;
 * each kind of egress widening flagged high risk; Markdown cut gracefully to fit a PR comment.
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv2020 from 'ajv/dist/2020';
import { FilteredHost, FilteredHostRolesProps } from '../constructs';
import { Flow, Peer, Port, customRole, dnsClient, mailServer, ntpClient, sshAdmin, webServer } from '../lib';
import { GITHUB_COMMENT_LIMIT, Report, buildReport, diffJson, diffMarkdown, diffReports, diffStacks, reportMarkdown } from '../lib/report';
import { loadStacks } from '../cli/artefacts';
import { expectGolden } from './support/golden';
import { expectMermaidParses, mermaidBlocks, parseMermaid } from './support/mermaid';
import { cleanUp, runReviewCli, synthExample, synthExampleWithSubmissionEgress, synthStack, writeStacks } from './support/review';

const base = synthExample();
const head = synthExampleWithSubmissionEgress();
afterAll(cleanUp);

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };

const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'docs', 'report-schema.json'), 'utf8'));
const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(schema);
const validateDiff = ajv.compile(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'docs', 'diff-schema.json'), 'utf8')));

describe('twinwall report', () => {
  it('markdown on the example app matches its golden and fits a pull-request comment', async () => {
    const r = await runReviewCli(['report', base]);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out.length).toBeLessThan(GITHUB_COMMENT_LIMIT);
    expect(r.out).toContain('```mermaid\nflowchart LR');
    expect(r.out).not.toContain('Cut to fit');
    expectGolden('review/report-example.md', r.out);
  });

  it('json on the example app matches its golden and its schema', async () => {
    const r = await runReviewCli(['report', base, '--format', 'json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as Report;
    expect(validate(json) ? [] : validate.errors).toEqual([]);
    expect(json.summary).toEqual({ stacks: 2, hosts: 10, errors: 0, warnings: 0, notices: 12, suppressed: 0, hostsWhereWallsDisagree: 0 });
    expectGolden('review/report-example.json', r.out);
  });

  it('names the role and reason of every flow of the sample server, and its host-only decisions', () => {
    const { report } = buildReport(loadStacks(base));
    const sample = report.stacks.find((s) => s.name === 'staging')?.hosts.find((h) => h.name === 'sample');
    expect(sample?.flows.map((f) => `${f.direction} ${f.service} ${f.traffic} ${f.peers.join('+')} ${f.networkWall.admits}/${f.hostWall.admits} ${f.because.map((p) => p.role).join(',')}`)).toEqual([
      'ingress ssh tcp/22 192.0.2.0/24 true/true sshAdmin',
      'ingress smtp tcp/25 any IPv4+any IPv6 true/true mailServer',
      'ingress http tcp/80 any IPv4+any IPv6 true/true webServer',
      'ingress https tcp/443 any IPv4+any IPv6 true/true webServer',
      'egress smtp tcp/25 any IPv4+any IPv6 true/true mailServer',
      'egress dns tcp/53 10.10.0.2/32 true/true dnsClient',
      'egress dns udp/53 10.10.0.2/32 true/true dnsClient',
    ]);
    const imds = sample?.hostOnly.find((d) => d.kind === 'instanceMetadata' && d.family === 4);
    expect(imds).toMatchObject({ address: '169.254.169.254', admits: 'egress tcp/80 for uid 0 only' });
  });

  it('the head variant reports the new submission egress with its reason', async () => {
    const r = await runReviewCli(['report', head, '--format', 'json']);
    const json = JSON.parse(r.out) as Report;
    expect(validate(json) ? [] : validate.errors).toEqual([]);
    const sample = json.stacks[0].hosts.find((h) => h.name === 'sample');
    expect(sample?.flows.find((f) => f.traffic === 'tcp/587')).toMatchObject({
      direction: 'egress',
      service: 'submission',
      peers: ['any IPv4', 'any IPv6'],
      because: [{ role: 'mailServer', service: 'submission', reason: 'hand outbound mail to smarthosts on the submission port' }],
    });
    expectGolden('review/report-head.md', (await runReviewCli(['report', head])).out);
  });

  it('cuts gracefully under a budget, naming what it left out', () => {
    const { report } = buildReport(loadStacks(base));
    const full = reportMarkdown(report);
    const cut = reportMarkdown(report, { budget: 6000 });
    expect(cut.length).toBeLessThanOrEqual(6000);
    expect(cut.startsWith('## twinwall report')).toBe(true);
    expect(cut).toContain('### Lint');
    expect(cut).toMatch(/✂️ \*\*Cut to fit a pull-request comment:\*\* \d+ sections left out \(/);
    expect(cut).toContain('`staging/web`');
    expect(full.length).toBeGreaterThan(cut.length);
  });

  it('keeps a huge report under GitHub\'s limit', () => {
    // Forty copies of the example's hosts: far more than one comment holds.
    const { report } = buildReport(loadStacks(base));
    const hosts = report.stacks.flatMap((st) => st.hosts);
    const huge: Report = { ...report, stacks: [{ name: 'huge', hosts: Array.from({ length: 40 }, (_, i) => hosts.map((h) => ({ ...h, stack: 'huge', name: `${h.name}${i}` }))).flat() }] };
    const md = reportMarkdown(huge);
    expect(md.length).toBeLessThan(GITHUB_COMMENT_LIMIT);
    expect(md).toContain('Cut to fit a pull-request comment');
    expect(md).toMatch(/\| … \| +\| +\| \d+ more: 0 errors, 0 warnings, \d+ notices, 0 suppressed/);
    expect(md).toMatch(/✂️ \*\*Cut to fit a pull-request comment:\*\* \d+ sections left out/);
  });

  it('exits 1 with --fail-on warning when a warning is active, 2 on a missing directory', async () => {
    const stack = synthStack((scope) => {
      new FilteredHost(scope, 'h', { vpcId: VPC, instance: INSTANCE, roles: [ntpClient()], audit: true });
    });
    const dir = writeStacks([stack]);
    expect((await runReviewCli(['report', dir, '--fail-on', 'warning'])).code).toBe(1);
    expect((await runReviewCli(['report', dir, '--fail-on', 'error'])).code).toBe(0);
    const missing = await runReviewCli(['report', path.join(dir, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('does not exist');
    expect((await runReviewCli(['report', dir, '--format', 'yaml'])).code).toBe(2);
  });
});

describe('diagrams GitHub can draw', () => {
  it('every mermaid diagram of the example report and of the head variant parses with mermaid\'s own parser', async () => {
    const reports = await Promise.all([base, head].map((d) => runReviewCli(['report', d])));
    for (const r of reports) expect(r.code).toBe(0);
    // One diagram per stack (production, staging) in each report.
    expect(expectMermaidParses(reports.map((r) => r.out).join('\n'))).toBe(4);
  });

  it('the parser refuses a diagram GitHub would show as an error (the check can fail)', () => {
    const [diagram] = mermaidBlocks(fs.readFileSync(path.join(__dirname, 'golden', 'review', 'report-example.md'), 'utf8'));
    const broken = diagram.replace(/-->\|"[^"]*"\|/, '-->|"an edge label left open');
    expect(broken).not.toBe(diagram);
    expect(parseMermaid([diagram, broken]).map((r) => r.ok)).toEqual([true, false]);
  });
});

describe('twinwall diff', () => {
  it('reports no change between two synths of the example app', async () => {
    const r = await runReviewCli(['diff', base, base, '--fail-on', 'any-change']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expectGolden('review/diff-unchanged.md', r.out);
  });

  it('json of the widened pair matches its golden', async () => {
    const r = await runReviewCli(['diff', base, head, '--format', 'json']);
    expectGolden('review/diff-widened.json', r.out);
    const diff = JSON.parse(r.out);
    expect(validateDiff(diff) ? [] : validateDiff.errors).toEqual([]);
    expect(diff.summary).toEqual({ hostsAdded: 0, hostsRemoved: 0, hostsChanged: 2, flowsAdded: 4, flowsRemoved: 0, highRisk: 4, anyChange: true, widenedEgress: true });
  });

  it('--fail-on widened-egress exits 1 and names the host, the port and the destination; markdown golden', async () => {
    const r = await runReviewCli(['diff', base, head, '--fail-on', 'widened-egress']);
    expect(r.code).toBe(1);
    expect(r.out.length).toBeLessThan(GITHUB_COMMENT_LIMIT);
    expectGolden('review/diff-widened.md', r.out);
    expect(r.err).toContain('twinwall diff: egress widened (--fail-on widened-egress):');
    expect(r.err).toContain('staging/sample: added egress tcp/587 to any IPv4');
    expect(r.err).toContain('production/sample: added egress tcp/587 to any IPv6');
    expect(r.out).toContain('🛑 **Egress widened** on 2 hosts');
  });

  it('removal is not widening', () => {
    const back = diffReports(buildReport(loadStacks(head)), buildReport(loadStacks(base)));
    expect(back.summary).toMatchObject({ widenedEgress: false, anyChange: true, flowsRemoved: 4, flowsAdded: 0, highRisk: 0 });
    expect(diffMarkdown(back)).toContain('✅ No egress widening.');
  });

  it('--fail-on any-change exits 1 on any change, 0 on none', async () => {
    const a = writeStacks([synthStack((scope) => void new FilteredHost(scope, 'h', { vpcId: VPC, instance: INSTANCE, roles: [ntpClient()] }))]);
    const b = writeStacks([synthStack((scope) => void new FilteredHost(scope, 'h', { vpcId: VPC, instance: INSTANCE, roles: [ntpClient(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })] }))]);
    const changed = await runReviewCli(['diff', a, b, '--fail-on', 'any-change']);
    expect(changed.code).toBe(1);
    expect(changed.err).toContain('stack/h: added ingress tcp/22 from 192.0.2.0/24');
    expect((await runReviewCli(['diff', a, b, '--fail-on', 'widened-egress'])).code).toBe(0);
    expect((await runReviewCli(['diff', a, a, '--fail-on', 'any-change'])).code).toBe(0);
  });

  describe('egress widening, kind by kind', () => {
    const one = (props: Partial<FilteredHostRolesProps>) =>
      synthStack((scope) => {
        new FilteredHost(scope, 'h', { vpcId: VPC, instance: INSTANCE, roles: [dnsClient({ resolvers: [Peer.ipv4('10.0.0.2/32')] })], ...props });
      });
    const reasons = (a: ReturnType<typeof one>, b: ReturnType<typeof one>) => {
      const d = diffStacks([a], [b]);
      return { d, lines: d.hosts.flatMap((h) => [...h.flows.map((f) => `${f.risk} ${f.change} ${f.walls.join('+')} ${f.flow}: ${f.reasons.join('; ')}`), ...h.settings.map((s) => `${s.risk} ${s.setting}: ${s.text}`)]) };
    };
    const base1 = one({});

    it('a broader CIDR is the added addresses only, flagged as a broader destination', () => {
      const wider = one({ roles: [dnsClient({ resolvers: [Peer.ipv4('10.0.0.0/30')] })] });
      const { lines } = reasons(base1, wider);
      expect(lines).toEqual([
        'high added network+host egress tcp/53 + udp/53 to 10.0.0.0/31, 10.0.0.3/32: broader destination: tcp/53 + udp/53 now also to 10.0.0.0/31, 10.0.0.3/32 (before: 10.0.0.2/32)',
      ]);
    });

    it('a new destination and a new port', () => {
      const more = one({ roles: [dnsClient({ resolvers: [Peer.ipv4('10.0.0.2/32')] }), customRole('updates', [Flow.egress(Port.tcp(443), Peer.ipv4('198.51.100.0/24'), 'package mirror')])] });
      const { lines } = reasons(base1, more);
      expect(lines).toEqual(['high added network+host egress tcp/443 to 198.51.100.0/24: new port or protocol: tcp/443; new destination: 198.51.100.0/24']);
    });

    it('audit mode switched on', () => {
      const { d, lines } = reasons(base1, one({ audit: true }));
      expect(lines).toContain('high audit-mode: audit mode switched ON: the host wall now logs and accepts everything it would drop; only the security group filters');
      expect(d.summary.widenedEgress).toBe(true);
    });

    it('the instance metadata service opened to every user', () => {
      const { d, lines } = reasons(base1, one({ instanceMetadata: 'all-users' }));
      expect(lines).toContain('high instance-metadata: instance metadata service (tcp/80 to 169.254.169.254) reachable by: root-only → all-users (opened: more local users can read the instance role credentials)');
      expect(lines.find((l) => l.startsWith('high added host egress tcp/80 to 169.254.169.254'))).toContain('instance metadata service (169.254.169.254) reachable by more users or ports');
      expect(diffMarkdown(d)).toContain('🛑 HIGH');
    });

    it('new ingress is medium risk and not egress widening; hosts added and removed are listed', () => {
      const withWeb = one({ roles: [dnsClient({ resolvers: [Peer.ipv4('10.0.0.2/32')] }), webServer()] });
      const { d, lines } = reasons(base1, withWeb);
      expect(lines.every((l) => l.startsWith('medium added network+host ingress tcp/'))).toBe(true);
      expect(d.summary.widenedEgress).toBe(false);
      const other = synthStack((scope) => {
        new FilteredHost(scope, 'mail', { vpcId: VPC, instance: INSTANCE, roles: [mailServer()] });
      });
      const swap = diffStacks([base1], [other]);
      expect(swap.hosts.map((h) => `${h.name} ${h.status}`)).toEqual(['h removed', 'mail added']);
      expect(diffMarkdown(swap)).toContain('host **added**');
      const json = JSON.parse(diffJson(swap));
      expect(validateDiff(json) ? [] : validateDiff.errors).toEqual([]);
      expect(json.hosts[1].admits.map((f: { traffic: string; direction: string }) => `${f.direction} ${f.traffic}`)).toEqual(['ingress tcp/25', 'egress tcp/25']);
    });
  });
});
