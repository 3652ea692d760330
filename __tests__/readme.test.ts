/**
 * The README's generated tables match the code, and its first two commands are the ones a
 * newcomer runs on a fresh machine.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LINT_DOC, README, regenerate } from '../scripts/docs';
import { EXIT_CODES_HELP } from '../cli/exit';
import { StackInput, checkStacks } from '../lib/check';
import { readmeBlock } from './support/readme';

const readme = fs.readFileSync(README, 'utf8');

describe('README', () => {
  it('has up-to-date role and service tables (run `npm run docs` to refresh)', () => {
    expect(readme).toBe(regenerate(readme));
  });

  it("docs/lint.md's rule table is the rules' own rows (run `npm run docs` to refresh)", () => {
    const doc = fs.readFileSync(LINT_DOC, 'utf8');
    expect(doc).toBe(regenerate(doc, LINT_DOC));
  });

  it('starts with the install-and-synth command and the test command, in that order', () => {
    const blocks = [...readme.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1].trim());
    expect(blocks.slice(0, 2)).toEqual(['npm ci && npm run synth', 'npm test']);
  });

  it('lists every role the table generator knows', () => {
    for (const role of ['webServer', 'mailServer', 'dnsServer', 'sshAdmin', 'dnsClient', 'ntpClient', 'customRole']) {
      expect(readme).toContain(`\`${role}(`);
    }
  });
});

/** Run `fn` with CDKTF_OUTDIR set to a fresh directory; returns the synthesized stacks. */
function synthInto(fn: () => void): StackInput[] {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-readme-'));
  const before = process.env.CDKTF_OUTDIR;
  process.env.CDKTF_OUTDIR = outdir;
  try {
    fn();
    return fs.readdirSync(path.join(outdir, 'stacks')).map((name) => ({ name, json: JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', name, 'cdk.tf.json'), 'utf8')) }));
  } finally {
    if (before === undefined) delete process.env.CDKTF_OUTDIR;
    else process.env.CDKTF_OUTDIR = before;
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

describe('README "Use it in your cdktf project"', () => {
  it('shows examples/readme-usage.ts verbatim (so `tsc --noEmit` type-checks the README\'s TypeScript)', () => {
    expect(readmeBlock(readme, 'Use it in your cdktf project', 'ts')).toBe(fs.readFileSync(path.join(__dirname, '..', 'examples', 'readme-usage.ts'), 'utf8'));
  });

  it('the TypeScript example synthesizes instances and a launch template wearing both walls, granted to each other, and they check clean', () => {
    const stacks = synthInto(() => {
      jest.isolateModules(() => {
        require('../examples/readme-usage');
      });
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const json = stacks.find((s) => s.name === 'production')?.json as any;
    expect(Object.keys(json.resource.aws_security_group)).toHaveLength(4);
    const instance = Object.values(json.resource.aws_instance)[0] as Record<string, unknown>;
    expect(instance.user_data_base64).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const template = Object.values(json.resource.aws_launch_template)[0] as Record<string, unknown>;
    expect(template.user_data).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const report = checkStacks(stacks);
    // Named by their twinwall hosts, not by the resources they were attached to.
    expect(report.hosts.map((h) => [h.label, h.host.address.split('.')[0], h.findings])).toEqual([
      ['production/api', 'aws_instance', []],
      ['production/db', 'aws_instance', []],
      ['production/mail', 'aws_instance', []],
      ['production/web', 'aws_launch_template', []],
    ]);
    // The grants: web → api tcp/8080 and api → db tcp/5432, each an SG reference on both sides.
    const refs = Object.values({ ...json.resource.aws_vpc_security_group_ingress_rule, ...json.resource.aws_vpc_security_group_egress_rule } as Record<string, Record<string, unknown>>)
      .filter((r) => r.referenced_security_group_id !== undefined)
      .map((r) => r.from_port)
      .sort();
    expect(refs).toEqual([5432, 5432, 8080, 8080]);
  });

  it('the JavaScript example runs as plain JavaScript and synthesizes an instance', () => {
    const code = readmeBlock(readme, 'Use it in your cdktf project', 'js');
    const stacks = synthInto(() => {
      jest.isolateModules(() => {
        new Function('require', code)((name: string) => (name === 'twinwall' ? require('twinwall') : require(name)));
      });
    });
    const report = checkStacks(stacks);
    expect(report.hosts.map((h) => [h.label, h.findings])).toEqual([['web/www', []]]);
  });

  it('states the exit codes as the CLI does (cli/exit.ts)', () => {
    expect(readme.replace(/\s+/g, ' ')).toContain(EXIT_CODES_HELP);
  });
});
