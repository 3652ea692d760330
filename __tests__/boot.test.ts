/**
 * Boot tier: real Debian 12 (bookworm) and Debian 13 (trixie) VMs, booted under qemu with the
 * synthesized user-data of the example hosts (decoded from cdktf.out's user_data_base64 exactly
 * as EC2 would hand it over), twice per instance id. From the serial console it reads what was
 * loaded and how the boot went, and holds it against the synthesized tables. Negative fixtures:
 * a table that cannot load must leave exactly its fallback (fail closed), loudly; a broken unit
 * must be reported. See docs/boot.md.
 *
 * Slow (minutes), so it runs only under CI=true or `npm run test:boot` (TWINWALL_BOOT=1).
 * TWINWALL_BOOT_SUITES: "bookworm,trixie" (default) or one of them.
 * TWINWALL_BOOT_HOSTS: "production/sample,iptables/sample" (default), "production" (every host of
 * that stack, with the default backend, nftables), "iptables" (the production stack with
 * hostFirewall 'iptables'), "all", or any comma list of stacks and stack/host ids. A negative
 * fixture is booted when the sample server it is derived from is selected (production/sample or
 * iptables/sample).
 * TWINWALL_BOOT_PARALLEL: guests booted at once (default 2); TWINWALL_BOOT_CPUS: vCPUs per guest
 * (default 1 when booting in parallel, else 2).
 * TWINWALL_BOOT_ACCEL=tcg skips the KVM probe; TWINWALL_BOOT_KEEP=1 keeps the work folder.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { App } from 'cdktf';
import { buildApp } from '../main';
import { BOOT_FIXTURES, BootFixture, FamilyName, USER_PARTS, fixtureUserData, loadFixture } from './support/boot/fixtures';
import { BootHost, canonicalTables, sampleCloudConfig, synthesizeHosts } from './support/boot/hosts';
import { BOOT_SUITES, BootImage, BootSuite, DEFAULT_CACHE_ROOT, ensureImage, imageRecipe, suiteLabel } from './support/boot/image';
import { Accel, killAllQemu, probeKvm } from './support/boot/qemu';
import { BootPlan, BootRecord, bootTwice, describeProblems } from './support/boot/run';
import { describeTier, netns, onPath, optIn, root } from './support/tiers';
import { readHostWall, splitMime } from '../lib/check/user-data';

/** What the whole tier (image builds, every boot of both releases) should stay well under on 2 cores. */
const BUDGET_SECONDS = 35 * 60;
const BOOT_TIMEOUT_MS = Number(process.env.TWINWALL_BOOT_TIMEOUT_S ?? 600) * 1000;
const MINUTE = 60_000;
/**
 * Booted by default: the article's sample server with each host-wall backend (plus the negative
 * fixtures, which are variants of them), on each release. TWINWALL_BOOT_HOSTS=production adds the
 * other production hosts.
 */
const DEFAULT_HOSTS = 'production/sample,iptables/sample';
const WANT = (process.env.TWINWALL_BOOT_HOSTS ?? DEFAULT_HOSTS).split(',').map((s) => s.trim());
/** Whether TWINWALL_BOOT_HOSTS selects the host `id` ("production/sample") of `stack`. */
const selected = (id: string): boolean => WANT.includes('all') || WANT.includes(id) || WANT.includes(id.split('/')[0]);
/** The negative fixtures booted: those whose sample server is selected. */
const FIXTURES = BOOT_FIXTURES.filter((f) => selected(f.host));
const SUITES: readonly BootSuite[] = (process.env.TWINWALL_BOOT_SUITES ?? BOOT_SUITES.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is BootSuite => {
    if (!(BOOT_SUITES as readonly string[]).includes(s)) throw new Error(`TWINWALL_BOOT_SUITES names ${JSON.stringify(s)}; known: ${BOOT_SUITES.join(', ')}`);
    return true;
  });
const PARALLEL = Math.max(1, Number(process.env.TWINWALL_BOOT_PARALLEL ?? 2));
const CPUS = Math.max(1, Number(process.env.TWINWALL_BOOT_CPUS ?? (PARALLEL > 1 ? 1 : 2)));

// eslint-disable-next-line no-console
const say = (m: string): void => console.log(`[boot] ${m}`);

function selectHosts(all: readonly BootHost[]): BootHost[] {
  const picked = all.filter((h) => selected(h.id));
  if (picked.length === 0) throw new Error(`TWINWALL_BOOT_HOSTS=${WANT.join(',')} names no host (have ${all.map((h) => h.id).join(', ')})`);
  return picked;
}

/** Run `fn` over `items`, at most `n` at a time. */
async function pool<T>(n: number, items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

// Fast, and in every `npm test`: the negative fixtures must still be the sample's user-data with
// exactly their one mistake, or the boot tier would be testing a stale document.
describe('boot tier fixtures', () => {
  it.each(BOOT_FIXTURES.map((f) => [f.name, f] as const))('%s is the current sample user-data with only its mistake', (_name, fixture) => {
    // The construct tree renders the user-data; nothing is synthesized to disk.
    const sample = sampleCloudConfig(fixture.host);
    const text = loadFixture(fixture, sample);
    expect(text).not.toBe(sample);
  });

  it('user-parts: the host wall\'s part first and exactly the (iptables) sample\'s, the user\'s parts after it; check reads the sample\'s tables with no finding; booted gzip-compressed as EC2 receives it', () => {
    // Derived from iptables/sample: the example's production stack with hostFirewall 'iptables'.
    const stacks = buildApp(new App({ outdir: path.join(os.tmpdir(), 'twinwall-boot-fixture-check') }), { hostFirewall: 'iptables' });
    const sampleHost = stacks.find((s) => s.node.id === 'production')?.hosts.find((h) => h.node.id === 'sample') as { cloudConfig: string; rendering: { iptables: { v4: string; v6: string } } };
    const fixture = BOOT_FIXTURES.find((f) => f.name === 'user-parts') as BootFixture;
    const text = loadFixture(fixture, sampleHost.cloudConfig);
    const parts = splitMime(text);
    expect(parts.map((p) => p.text)).toEqual([sampleHost.cloudConfig, ...USER_PARTS.map((p) => p.content)]);
    const wall = readHostWall(text);
    expect(wall.problems).toEqual([]);
    expect([wall.tables[4]?.text, wall.tables[6]?.text]).toEqual([sampleHost.rendering.iptables.v4, sampleHost.rendering.iptables.v6]);
    // The evidence lines are printed at run time, never written in the user-data.
    for (const line of fixture.evidence ?? []) expect(text).not.toContain(line);
    expect(fixture.evidence).toHaveLength(2);
    expect(gunzipSync(fixtureUserData(fixture, text)).toString('utf8')).toBe(text);
  });
});

interface Task {
  readonly suite: BootSuite;
  /** "production/sample" or "fixture v4-parse-failure". */
  readonly name: string;
  readonly plan: BootPlan;
  readonly fixture?: BootFixture;
}

interface Outcome {
  readonly records: BootRecord[];
  readonly seconds: number;
  readonly error?: Error;
}

describeTier(
  'boot',
  [
    optIn('TWINWALL_BOOT', 'takes minutes; run `npm run test:boot` (CI runs it)'),
    root,
    ...['qemu-system-x86_64', 'qemu-img', 'debootstrap', 'mkfs.ext4', 'genisoimage', 'chroot', 'ip', 'iptables-restore', 'ip6tables-restore'].map(onPath),
    netns,
  ],
  () => {
    const started = Date.now();
    let workDir: string;
    const images = new Map<BootSuite, BootImage>();
    let accel: Accel = 'tcg';
    let hosts: BootHost[] = [];
    let all: BootHost[] = [];
    let sample: BootHost;
    let failed = false;
    const outcomes = new Map<string, Outcome>();
    const key = (suite: BootSuite, name: string): string => `${suite} ${name}`;
    const buildSeconds = new Map<BootSuite, number>();

    beforeAll(async () => {
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-boot-'));
      for (const suite of SUITES) {
        const t = Date.now();
        const image = ensureImage(imageRecipe(suite), DEFAULT_CACHE_ROOT, say);
        images.set(suite, image);
        buildSeconds.set(suite, (Date.now() - t) / 1000);
        say(
          `${suiteLabel(suite)}: image ${image.hash.slice(0, 12)} ${image.built ? `built in ${((Date.now() - t) / 1000).toFixed(1)} s` : `from the cache, ${((Date.now() - t) / 1000).toFixed(1)} s`} (${image.dir})`,
        );
      }

      if (process.env.TWINWALL_BOOT_ACCEL === 'tcg') say('KVM probe skipped (TWINWALL_BOOT_ACCEL=tcg): software emulation');
      else {
        const kvm = await probeKvm(images.get(SUITES[0]) as BootImage, workDir);
        accel = kvm.usable ? 'kvm' : 'tcg';
        say(`KVM probe (${kvm.seconds.toFixed(1)} s): ${kvm.why} → ${kvm.usable ? 'KVM' : 'software emulation (TCG)'}`);
      }

      const t = Date.now();
      all = synthesizeHosts(path.join(workDir, 'cdktf.out'));
      hosts = selectHosts(all);
      sample = all.find((h) => h.id === 'production/sample') as BootHost;
      say(`synthesized ${all.length} hosts in ${((Date.now() - t) / 1000).toFixed(1)} s; booting ${hosts.map((h) => h.id).join(', ')} and ${FIXTURES.length} fixtures on ${SUITES.join(' and ')}`);

      // What a host must end up with: each family its table (an nftables host: the wall, and no
      // iptables rule); for a fixture, a wall that cannot load leaves its fallback.
      const NONE = { v4: '', v6: '' };
      const canonical = new Map<string, { v4: string; v6: string }>();
      const canonicalOf = (h: BootHost) => {
        if (h.backend === 'nftables') return NONE;
        if (!canonical.has(h.id)) canonical.set(h.id, canonicalTables(h.tables));
        return canonical.get(h.id) as { v4: string; v6: string };
      };
      const fixturePlan = (f: BootFixture, suite: BootSuite) => {
        const base = all.find((h) => h.id === f.host) as BootHost;
        const common = {
          label: `${suite} fixture ${f.name}`,
          userData: fixtureUserData(f, loadFixture(f, base.cloudConfig)),
          hostname: base.name,
          failing: f.failing,
          ...(f.evidence === undefined ? {} : { userEvidence: f.evidence }),
        };
        if (base.backend === 'nftables') {
          const nft = base.nftables as { wall: string; fallback?: string };
          if (f.failing.includes('nftables') && nft.fallback === undefined) throw new Error(`${base.id} has no nftables fallback (onLoadFailure open?): fixture ${f.name} needs one`);
          return { ...common, canonical: NONE, nftables: f.failing.includes('nftables') ? (nft.fallback as string) : nft.wall };
        }
        if (base.fallback === undefined && f.failing.length > 0) throw new Error(`${base.id} has no fallback (onLoadFailure open?): fixture ${f.name} needs one`);
        const real = canonicalOf(base);
        const fallback = f.failing.length > 0 ? canonicalTables(base.fallback as { v4: string; v6: string }) : real;
        const want = (failing: readonly FamilyName[]) => ({ v4: failing.includes('IPv4') ? fallback.v4 : real.v4, v6: failing.includes('IPv6') ? fallback.v6 : real.v6 });
        return { ...common, canonical: want(f.failing) };
      };

      const perSuite = (suite: BootSuite): Task[] => [
        ...hosts.map((h) => ({
          suite,
          name: h.id,
          plan: {
            label: `${suite} ${h.id}`,
            userData: h.userData,
            canonical: canonicalOf(h),
            ...(h.nftables === undefined ? {} : { nftables: h.nftables.wall }),
            hostname: h.name,
            failing: [],
          },
        })),
        ...FIXTURES.filter((f) => f.suites === undefined || f.suites.includes(suite)).map((f) => ({
          suite,
          name: `fixture ${f.name}`,
          fixture: f,
          plan: fixturePlan(f, suite),
        })),
      ];
      // Interleave the releases, so parallel guests of both make progress together.
      const lists = SUITES.map(perSuite);
      const tasks: Task[] = [];
      for (let i = 0; i < Math.max(...lists.map((l) => l.length)); i++) for (const l of lists) if (l[i] !== undefined) tasks.push(l[i]);

      say(`${tasks.length} plans × 2 boots, ${PARALLEL} guest(s) at a time, ${CPUS} vCPU each (${accel})`);
      await pool(PARALLEL, tasks, async (task) => {
        const t0 = Date.now();
        try {
          const records = await bootTwice(task.plan, { image: images.get(task.suite) as BootImage, workDir, accel, timeoutMs: BOOT_TIMEOUT_MS, say, cpus: CPUS });
          outcomes.set(key(task.suite, task.name), { records, seconds: (Date.now() - t0) / 1000 });
        } catch (e) {
          outcomes.set(key(task.suite, task.name), { records: [], seconds: (Date.now() - t0) / 1000, error: e as Error });
        }
      });
    }, 150 * MINUTE);

    afterAll(() => {
      killAllQemu();
      const total = (Date.now() - started) / 1000;
      const cpu = [...outcomes.values()].reduce((n, o) => n + o.records.reduce((m, r) => m + r.cpuSeconds, 0), 0);
      say(`tier total ${total.toFixed(0)} s (keep well under ${BUDGET_SECONDS} s on 2 cores; host load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})${total > BUDGET_SECONDS ? ' — OVER BUDGET' : ''}`);
      say(`qemu CPU time of every boot: ${cpu.toFixed(0)} s (on an otherwise idle 2-core machine the boots need at least ${(cpu / 2).toFixed(0)} s)`);
      for (const suite of SUITES) {
        say(`${suiteLabel(suite)}: image ${(buildSeconds.get(suite) ?? 0).toFixed(0)} s`);
        for (const [k, o] of outcomes) {
          if (!k.startsWith(`${suite} `)) continue;
          const boots = o.records.map((r) => `boot ${r.boot} ${r.seconds.toFixed(0)} s (${r.cpuSeconds.toFixed(0)} s CPU)`).join(', ');
          const w = o.records[0]?.judgement.facts.firstBootWindow;
          say(`  ${k.slice(suite.length + 1)}: ${boots || 'no boot'}${w === undefined ? '' : `; first-boot window ${w.toFixed(2)} s`}${o.error ? ` (error: ${o.error.message})` : ''}`);
        }
      }
      if (workDir !== undefined) {
        if (failed || process.env.TWINWALL_BOOT_KEEP === '1') say(`serial logs kept in ${workDir}`);
        else fs.rmSync(workDir, { recursive: true, force: true });
      }
    });

    const outcomeOf = (suite: BootSuite, name: string): Outcome => {
      const o = outcomes.get(key(suite, name));
      if (o === undefined) throw new Error(`${suite} ${name} was never booted (see the beforeAll output)`);
      if (o.error !== undefined) throw o.error;
      return o;
    };

    it('synthesized the example hosts, the article\'s sample server among them', () => {
      expect(sample).toBeDefined();
      expect(hosts.length).toBeGreaterThan(0);
      // As EC2 receives it: the sample's document is over 16 KB plain, so it travels gzip-compressed.
      expect(sample.userData.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    });

    for (const suite of SUITES) {
      describe(suiteLabel(suite), () => {
        it('every selected host (the sample server first): both boots load exactly the synthesized tables, cloud-init and systemd stay healthy', () => {
          const report: string[] = [];
          for (const host of hosts) {
            const { records } = outcomeOf(suite, host.id);
            const problems = describeProblems(`${suite} ${host.id}`, records);
            if (problems !== '') report.push(problems);
            if (records.length < 2) report.push(`${suite} ${host.id}: the second boot was not attempted (the first one ended with ${records[0]?.outcome})`);
          }
          if (report.length > 0) {
            failed = true;
            throw new Error(`the boot tier found problems:\n${report.join('\n')}`);
          }
        });

        for (const fixture of FIXTURES.filter((f) => f.suites === undefined || f.suites.includes(suite))) {
          it(`fixture ${fixture.name}: ${fixture.mistake}`, () => {
            const { records } = outcomeOf(suite, `fixture ${fixture.name}`);
            if (records.length < 2 || records.some((r) => r.outcome !== 'poweroff')) {
              failed = true;
              throw new Error(`fixture ${fixture.name}: the boots did not both run to power-off, so the judge was not exercised:\n${describeProblems(fixture.name, records)}`);
            }
            const reported = describeProblems(`${suite} fixture ${fixture.name}`, records);
            say(`${suite} fixture ${fixture.name} — what the judge reports:\n${reported || '  (nothing: the boots are what the fixture expects)'}`);
            if (fixture.failing.length > 0 || fixture.evidence !== undefined) {
              // Failing closed (or, with the user's own parts, booting healthy with every part run)
              // is the expected outcome: the judge held each boot to it.
              if (reported !== '') {
                failed = true;
                throw new Error(`fixture ${fixture.name} did not ${fixture.failing.length > 0 ? 'fail closed' : 'boot healthy with its parts run'} as it must:\n${reported}`);
              }
              return;
            }
            for (const r of records) {
              for (const pattern of fixture.expectProblems[r.boot]) {
                if (!r.judgement.problems.some((p) => pattern.test(p))) {
                  failed = true;
                  throw new Error(`fixture ${fixture.name}, boot ${r.boot}: expected a problem matching ${pattern}, the judge reported:\n  - ${r.judgement.problems.join('\n  - ') || '(nothing)'}\n(serial log ${r.serialLog})`);
                }
              }
            }
            // The mistake shows on the second boot at the latest: the tier fails on this fixture.
            expect(records[1].judgement.problems.length).toBeGreaterThan(0);
          });
        }
      });
    }
  },
);
