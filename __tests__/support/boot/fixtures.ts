/**
 * Negative fixtures of the boot tier: the sample server's user-data with one mistake each, kept
 * in __tests__/fixtures/boot/ so a reader sees exactly what is booted. Each fixture is the
 * current sample user-data with exactly one documented edit; the tier checks that before booting
 * (a stale fixture would test the wrong thing) and `TWINWALL_BLESS=1 npm run test:boot` rewrites
 * them after an intended change of the user-data.
 */
import * as fs from 'fs';
import * as path from 'path';

export const FIXTURE_DIR = path.join(__dirname, '..', '..', 'fixtures', 'boot');

export interface BootFixture {
  readonly name: string;
  readonly file: string;
  /** What is wrong with it, for test names and the fixture's own header. */
  readonly mistake: string;
  /** The edit that turns the sample's #cloud-config into this fixture. */
  readonly derive: (cloudConfig: string) => string;
  /** Problems the judge must report, per boot (each pattern must match one problem). */
  readonly expectProblems: { readonly 1: readonly RegExp[]; readonly 2: readonly RegExp[] };
}

function header(cloudConfig: string, mistake: string): string {
  const [first, ...rest] = cloudConfig.split('\n');
  if (first !== '#cloud-config') throw new Error('the sample user-data does not start with #cloud-config');
  return [first, `# BOOT TIER NEGATIVE FIXTURE (__tests__/fixtures/boot): ${mistake}. The boot tier must fail on it.`, ...rest].join('\n');
}

function removeOnce(text: string, re: RegExp, what: string): string {
  const found = text.match(new RegExp(re.source, `${re.flags.replace('g', '')}g`)) ?? [];
  if (found.length !== 1) throw new Error(`cannot derive the fixture: expected exactly one ${what} in the sample user-data, found ${found.length}`);
  return text.replace(re, '');
}

export const BOOT_FIXTURES: readonly BootFixture[] = [
  {
    name: 'no-default-dependencies',
    file: path.join(FIXTURE_DIR, 'sample-no-default-dependencies.cloud-config'),
    mistake: 'the firewall unit lacks DefaultDependencies=no',
    derive: (c) => header(removeOnce(c, /^ +DefaultDependencies=no\n/m, 'DefaultDependencies=no line'), 'the firewall unit lacks DefaultDependencies=no'),
    expectProblems: {
      1: [],
      2: [/ordering cycle/],
    },
  },
  {
    name: 'never-enabled',
    file: path.join(FIXTURE_DIR, 'sample-never-enabled.cloud-config'),
    mistake: 'nothing enables the firewall unit (no runcmd)',
    derive: (c) => header(removeOnce(c, /^runcmd:\n(?: +.*\n)+/m, 'runcmd block'), 'nothing enables the firewall unit (no runcmd)'),
    expectProblems: {
      1: [/twinwall-firewall\.service is "disabled", not enabled/],
      2: [/twinwall-firewall\.service is "disabled", not enabled/, /IPv4: the loaded rules are not the synthesized ones: nothing is loaded/, /never became active/],
    },
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
