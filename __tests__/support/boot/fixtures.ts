/**
 * Negative fixtures of the boot tier: the sample server's user-data with one mistake each, kept
 * in __tests__/fixtures/boot/ so a reader sees exactly what is booted. Each fixture is the
 * current sample user-data with exactly one documented edit; the tier checks that before booting
 * (a stale fixture would test the wrong thing) and `TWINWALL_BLESS=1 npm run test:boot` rewrites
 * them after an intended change of the user-data.
 *
 * Two kinds:
 * - a table that cannot load (`failing`): the host must fail closed. The judge holds the boot to
 *   that: the failing family has exactly its fallback, the other family exactly its table, the
 *   unit is `failed`, cloud-init reports the failed bootcmd, and the console and the journal
 *   carry the loader's failure line. Any other problem fails the fixture.
 * - a broken contract (`expectProblems`): the judge must report the mistake.
 * And one that is no mistake (`evidence`): the sample's user-data with the user's own parts
 * after the host wall's (a cloud-config part that writes a file and adds a runcmd, and a shell
 * script that prints the file), as FilteredHost's `userDataParts` ship them. The wall must load
 * exactly as without them, and the first boot must show each evidence line (the parts ran).
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserDataPart, composeUserData, deterministicGzip } from '../../../lib/render';
import { BootSuite, MISSING_MODULE } from './image';
import { FailingWall } from './report';

export const FIXTURE_DIR = path.join(__dirname, '..', '..', 'fixtures', 'boot');

export type FamilyName = FailingWall;

export interface BootFixture {
  readonly name: string;
  /**
   * The host whose user-data it is derived from: the sample server with the default backend,
   * nftables (`production/sample`), or with the iptables one (`iptables/sample`). It is booted
   * when that host is selected (TWINWALL_BOOT_HOSTS).
   */
  readonly host: 'production/sample' | 'iptables/sample';
  readonly file: string;
  /** What is wrong with it, for test names and the fixture's own header. */
  readonly mistake: string;
  /** The edit that turns the sample's #cloud-config into this fixture. */
  readonly derive: (cloudConfig: string) => string;
  /** The walls that cannot load: they must end up with exactly their fallback. */
  readonly failing: readonly FamilyName[];
  /** Problems the judge must report, per boot (each pattern must match one problem). */
  readonly expectProblems: { readonly 1: readonly RegExp[]; readonly 2: readonly RegExp[] };
  /** The releases it is booted on (default: every release the tier boots). */
  readonly suites?: readonly BootSuite[];
  /**
   * Lines the user's own parts print at the first boot (cloud-final's output, in the journal and
   * on the console): the judge requires each (Expected.userEvidence).
   */
  readonly evidence?: readonly string[];
  /** Boot it gzip-compressed, as EC2 receives a document over 16,384 bytes (default: as the file holds it). */
  readonly gzip?: boolean;
}

/** What the user's parts of the `user-parts` fixture print when they run (on the sample server). */
export const USER_PART_EVIDENCE = [
  'twinwall boot fixture: the user cloud-config part\'s runcmd ran on sample',
  'twinwall boot fixture: the user script ran; its file says: written by the user\'s cloud-config part',
] as const;

/**
 * The user's own parts of the `user-parts` fixture. The printed lines are assembled at run time
 * (`$(hostname)`, `$(cat …)`), so the user-data itself never holds them: seeing one proves the
 * part ran, and the second also that the cloud-config part's file was written first.
 */
export const USER_PARTS: readonly UserDataPart[] = [
  UserDataPart.cloudConfig({
    write_files: [{ path: '/etc/user-part-fixture/hello.txt', content: "written by the user's cloud-config part\n", permissions: '0644' }],
    runcmd: [['sh', '-c', `echo "twinwall boot fixture: the user cloud-config part's runcmd ran on $(hostname)"`]],
  }),
  UserDataPart.shellScript('#!/bin/sh\necho "twinwall boot fixture: the user script ran; its file says: $(cat /etc/user-part-fixture/hello.txt)"\n'),
];

/** The bytes a fixture is booted with. */
export function fixtureUserData(fixture: BootFixture, text: string): Buffer {
  const plain = Buffer.from(text, 'utf8');
  return fixture.gzip === true ? deterministicGzip(plain) : plain;
}

function header(cloudConfig: string, mistake: string): string {
  const [first, ...rest] = cloudConfig.split('\n');
  if (first !== '#cloud-config') throw new Error('the sample user-data does not start with #cloud-config');
  return [first, `# BOOT TIER NEGATIVE FIXTURE (__tests__/fixtures/boot): ${mistake}.`, ...rest].join('\n');
}

/** Replace every match of `re` (a global, multiline pattern), which must match exactly `count` times. */
function replaceEach(text: string, re: RegExp, replacement: string, count: number, what: string): string {
  const found = text.match(re) ?? [];
  if (found.length !== count) throw new Error(`cannot derive the fixture: expected ${count} × ${what} in the sample user-data, found ${found.length}`);
  return text.replace(re, replacement);
}

const NO_PROBLEMS = { 1: [], 2: [] } as const;

export const BOOT_FIXTURES: readonly BootFixture[] = [
  {
    name: 'v4-parse-failure',
    host: 'iptables/sample',
    file: path.join(FIXTURE_DIR, 'sample-v4-parse-failure.cloud-config'),
    mistake: 'the IPv4 table has a typo (--dprot for --dport in the admin rule), so it does not parse: IPv4 must keep its fallback, IPv6 load its table',
    // Both copies of the IPv4 table (bootcmd's and rules.v4): the admin rule is IPv4 only.
    derive: (c) =>
      header(
        replaceEach(c, /^( +-A tw-in -s \S+ -p tcp -m tcp) --dport 22 /gm, '$1 --dprot 22 ', 2, 'IPv4 admin rule'),
        'the IPv4 table has a typo (--dprot for --dport in the admin rule), so it does not parse: IPv4 must keep its fallback, IPv6 load its table',
      ),
    failing: ['IPv4'],
    expectProblems: NO_PROBLEMS,
  },
  {
    name: 'missing-module',
    host: 'iptables/sample',
    file: path.join(FIXTURE_DIR, 'sample-missing-module.cloud-config'),
    mistake: `the IPv6 table carries a hand-added SSH rate limit that needs ${MISSING_MODULE}, which the image lacks: IPv6 must keep its fallback, IPv4 load its table`,
    // Both copies of the IPv6 table: after its DHCPv6 rule (the fallback's has no comment).
    derive: (c) =>
      header(
        replaceEach(
          c,
          /^( +)(-A INPUT -d fe80::\/10 -p udp -m udp --sport 547 --dport 546 -m comment .* -j ACCEPT)$/gm,
          '$1$2\n$1-A INPUT -p tcp -m tcp --dport 22 -m recent --name twinwall-ssh --update --seconds 60 --hitcount 5 -j DROP',
          2,
          'IPv6 DHCPv6 rule',
        ),
        `the IPv6 table carries a hand-added SSH rate limit that needs ${MISSING_MODULE}, which the image lacks: IPv6 must keep its fallback, IPv4 load its table`,
      ),
    failing: ['IPv6'],
    expectProblems: NO_PROBLEMS,
  },
  {
    name: 'no-default-dependencies',
    host: 'iptables/sample',
    file: path.join(FIXTURE_DIR, 'sample-no-default-dependencies.cloud-config'),
    mistake: 'the firewall unit lacks DefaultDependencies=no. The boot tier must fail on it',
    derive: (c) => header(replaceEach(c, /^ +DefaultDependencies=no\n/gm, '', 1, 'DefaultDependencies=no line'), 'the firewall unit lacks DefaultDependencies=no. The boot tier must fail on it'),
    failing: [],
    expectProblems: {
      1: [],
      2: [/ordering cycle/],
    },
    // It tests the judge, not the user-data: the cycle was first seen on bookworm (its journal
    // lines are in boot-judge.test.ts), where the second boot runs to power-off with the cycle in
    // its journal. On trixie the cycle's outcome varies from boot to boot: a second boot on
    // 2026-11-30 hung after cloud-init's local stage until qemu's timeout (600 s, no report to
    // judge), so it is booted where its outcome is the same every time (docs/boot.md).
    suites: ['bookworm'],
  },
  {
    name: 'nft-parse-failure',
    host: 'production/sample',
    file: path.join(FIXTURE_DIR, 'sample-nft-parse-failure.cloud-config'),
    mistake: 'the nftables wall has a typo (dprot for dport in the admin rule), so nft refuses the whole transaction: table inet twinwall must keep its fallback',
    // Both copies of the wall (bootcmd's and twinwall.nft); the fallback's admin rule has no comment.
    derive: (c) =>
      header(
        replaceEach(c, /^([ \t]+ip6? saddr \S+ tcp) dport 22 (ct state new accept comment "sshAdmin\/)/gm, '$1 dprot 22 $2', 2, 'admin rule of the nftables wall'),
        'the nftables wall has a typo (dprot for dport in the admin rule), so nft refuses the whole transaction: table inet twinwall must keep its fallback',
      ),
    failing: ['nftables'],
    expectProblems: NO_PROBLEMS,
    // One release: the loader and its transaction are the same on both, and each plan is two
    // boots of the tier's time (docs/boot.md). Bookworm, where it has passed.
    suites: ['bookworm'],
  },
  {
    name: 'user-parts',
    host: 'iptables/sample',
    file: path.join(FIXTURE_DIR, 'sample-user-parts.mime'),
    mistake: "no mistake: the user's own parts (a cloud-config writing a file and adding a runcmd, a shell script) after the host wall's, in a MIME multi-part document; the wall must load exactly and each part must run",
    derive: (c) => composeUserData(c, USER_PARTS),
    failing: [],
    expectProblems: NO_PROBLEMS,
    evidence: USER_PART_EVIDENCE,
    gzip: true,
    // Two boots more, not four (CI's 90 minutes): trixie's cloud-init 25.1 is seen only in boots,
    // while bookworm's 22.4 is the version whose own merge code the unit tests run
    // (user-data-parts.test.ts reads this fixture with it). TWINWALL_BOOT_SUITES still selects.
    suites: ['trixie'],
  },
];

/** The fixture's text on disk, after checking it is still the sample with exactly its one edit. */
export function loadFixture(fixture: BootFixture, sampleCloudConfig: string): string {
  const want = fixture.derive(sampleCloudConfig);
  if (process.env.TWINWALL_BLESS === '1') {
    fs.mkdirSync(path.dirname(fixture.file), { recursive: true });
    fs.writeFileSync(fixture.file, want);
  }
  if (!fs.existsSync(fixture.file)) throw new Error(`boot fixture ${fixture.file} is missing: run \`TWINWALL_BLESS=1 npm run test:boot\` and review it`);
  const onDisk = fs.readFileSync(fixture.file, 'utf8');
  if (onDisk !== want) {
    throw new Error(
      `boot fixture ${path.basename(fixture.file)} is not the current sample user-data with only its mistake (${fixture.mistake}): the user-data changed since it was written. Run \`TWINWALL_BLESS=1 npm run test:boot\` and review the diff.`,
    );
  }
  return onDisk;
}
