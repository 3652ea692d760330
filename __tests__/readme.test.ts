/**
 * The README's generated tables match the code, and its first two commands are the ones a
 * newcomer runs on a fresh machine.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { README, regenerate } from '../scripts/docs';

const readme = fs.readFileSync(README, 'utf8');

describe('README', () => {
  it('has up-to-date role and service tables (run `npm run docs` to refresh)', () => {
    expect(readme).toBe(regenerate(readme));
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

describe('README usage example', () => {
  it('runs and synthesizes one security group with its rules and an instance', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require('typescript') as typeof import('typescript');
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toBeDefined();
    const js = ts.transpileModule(code as string, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 } }).outputText;
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-readme-'));
    const local: Record<string, unknown> = { './constructs': require('../constructs'), './lib': require('../lib') };
    const load = (name: string): unknown => local[name] ?? require(name);
    const before = process.env.CDKTF_OUTDIR;
    process.env.CDKTF_OUTDIR = outdir;
    try {
      new Function('require', 'exports', js)(load, {});
      const json = JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', 'production', 'cdk.tf.json'), 'utf8'));
      expect(Object.keys(json.resource.aws_security_group)).toHaveLength(1);
      expect(Object.keys(json.resource.aws_instance)).toHaveLength(1);
      expect(Object.keys(json.resource.aws_vpc_security_group_egress_rule).length).toBeGreaterThan(0);
      expect(json.resource.aws_instance[Object.keys(json.resource.aws_instance)[0]].user_data_base64).toMatch(/^[A-Za-z0-9+/]+=*$/);
    } finally {
      if (before === undefined) delete process.env.CDKTF_OUTDIR;
      else process.env.CDKTF_OUTDIR = before;
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
