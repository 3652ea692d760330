/**
 * Terraform tier: synthesize the example app into a temporary directory, then run `terraform
 * init`, `validate` and `plan` on every stack, offline, installing the AWS provider from the
 * local filesystem mirror through a CLI config this test writes itself (DESIGN "Machine facts").
 * The plan must create exactly the resources the hosts declare, with the user-data untouched.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'cdktf';
import { buildApp, TwinwallExampleStack } from '../main';
import { Prerequisite, describeTier, onPath } from './support/tiers';

jest.setTimeout(300_000);

/** The provider version @cdktf/provider-aws binds (and the synthesized JSON pins). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const AWS_PROVIDER_VERSION: string = require('@cdktf/provider-aws/package.json').cdktf.provider.version;
const PLATFORM = `${process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}`;

/** True when `root` is a filesystem mirror holding the AWS provider binary for this platform. */
function holdsProvider(root: string): boolean {
  const dir = path.join(root, 'registry.terraform.io', 'hashicorp', 'aws', AWS_PROVIDER_VERSION, PLATFORM);
  try {
    return fs.readdirSync(dir).some((f) => f.startsWith('terraform-provider-aws') && fs.lstatSync(path.join(dir, f)).isFile());
  } catch {
    return false;
  }
}

let mirrorRoot: string | null | undefined;

/**
 * The mirror's root: $TWINWALL_TF_MIRROR, the usual places, else a search of the root file system
 * (slow, so last). Plugin caches hold symlinks, not the binary, and are never taken for a mirror.
 */
function findMirror(): string | undefined {
  if (mirrorRoot !== undefined) return mirrorRoot ?? undefined;
  const known = [process.env.TWINWALL_TF_MIRROR, '/opt/tf-plugins', '/usr/local/share/terraform/plugins', '/usr/share/terraform/plugins', path.join(os.homedir(), '.terraform.d', 'plugins')];
  let found = known.find((d): d is string => d !== undefined && d !== '' && holdsProvider(d));
  if (found === undefined) {
    const r = spawnSync('find', ['/', '-xdev', '-type', 'd', '-name', 'registry.terraform.io', '-not', '-path', '*/.terraform/*'], { encoding: 'utf8', timeout: 120_000 });
    found = (r.stdout ?? '')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => path.dirname(l))
      .find(holdsProvider);
  }
  mirrorRoot = found ?? null;
  return found;
}

const providerMirror: Prerequisite = {
  name: 'offline provider mirror',
  check: () =>
    findMirror() !== undefined
      ? undefined
      : `no filesystem mirror holds registry.terraform.io/hashicorp/aws/${AWS_PROVIDER_VERSION}/${PLATFORM} (set TWINWALL_TF_MIRROR to its root)`,
};

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describeTier('terraform', [onPath('terraform'), providerMirror], () => {
  let work: string;
  let stacksDir: string;
  let env: NodeJS.ProcessEnv;
  let stacks: TwinwallExampleStack[];

  /** Run terraform in a stack directory; fail with its output when it fails. */
  function terraform(stack: string, args: string[]): Run {
    const r = spawnSync('terraform', args, { cwd: path.join(stacksDir, stack), env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const run = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (r.error !== undefined || r.status !== 0) {
      throw new Error(`terraform ${args.join(' ')} in ${stack} exited ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${run.stdout}\n${run.stderr}`);
    }
    return run;
  }

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-tf-'));
    const outdir = path.join(work, 'cdktf.out');
    // The context the CLI would pass from cdktf.json, so this is the app `npm run synth` builds.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const app = new App({ outdir, context: require('../cdktf.json').context });
    stacks = buildApp(app);
    app.synth();
    stacksDir = path.join(outdir, 'stacks');

    const cliConfig = path.join(work, 'terraform.tfrc');
    fs.writeFileSync(
      cliConfig,
      [
        '# Written by __tests__/terraform.test.ts: install the AWS provider from the local mirror only.',
        'provider_installation {',
        '  filesystem_mirror {',
        `    path    = ${JSON.stringify(findMirror())}`,
        '    include = ["registry.terraform.io/hashicorp/aws"]',
        '  }',
        '  direct {',
        '    exclude = ["registry.terraform.io/hashicorp/aws"]',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const cache = path.join(work, 'plugin-cache');
    fs.mkdirSync(cache);
    env = { ...process.env };
    // No ambient AWS settings: the plan must work from the stack's own offline provider block.
    for (const key of Object.keys(env)) if (key.startsWith('AWS_')) delete env[key];
    Object.assign(env, {
      TF_CLI_CONFIG_FILE: cliConfig,
      TF_PLUGIN_CACHE_DIR: cache, // fresh, shared by the stacks: the second init links, not copies
      CDKTF_DISABLE_PLUGIN_CACHE_ENV: '1',
      CHECKPOINT_DISABLE: '1',
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
    });
    // Each stack keeps its own .terraform directory (a shared TF_DATA_DIR would mix them).
    delete env.TF_DATA_DIR;
  });

  afterAll(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  });

  it('synthesizes a directory per stack', () => {
    expect(fs.readdirSync(stacksDir).sort()).toEqual(['production', 'staging']);
  });

  describe.each(['staging', 'production'])('%s', (name) => {
    let plan: {
      resource_changes: { type: string; name: string; change: { actions: string[]; after: Record<string, unknown> } }[];
    };
    const stack = () => stacks.find((s) => s.node.id === name) as TwinwallExampleStack;

    beforeAll(() => {
      terraform(name, ['init', '-input=false', '-no-color']);
    });

    it('validates', () => {
      const out = terraform(name, ['validate', '-json', '-no-color']);
      const result = JSON.parse(out.stdout);
      expect({ valid: result.valid, errors: result.error_count }).toEqual({ valid: true, errors: 0 });
    });

    it('plans offline, creating exactly what the hosts declare', () => {
      terraform(name, ['plan', '-input=false', '-no-color', '-lock=false', '-refresh=false', '-out=plan.bin']);
      plan = JSON.parse(terraform(name, ['show', '-json', 'plan.bin']).stdout);
      const hosts = stack().hosts;
      const specs = hosts.flatMap((h) => h.rendering.securityGroups.rules);
      const counts: Record<string, number> = {};
      for (const rc of plan.resource_changes) {
        expect(rc.change.actions).toEqual(['create']);
        counts[rc.type] = (counts[rc.type] ?? 0) + 1;
      }
      expect(counts).toEqual({
        aws_security_group: hosts.length,
        aws_instance: hosts.length,
        aws_vpc_security_group_ingress_rule: specs.filter((s) => s.direction === 'ingress').length,
        aws_vpc_security_group_egress_rule: specs.filter((s) => s.direction === 'egress').length,
      });
      // The example's five hosts, and rules for all of them (numbers pinned so a change shows).
      expect(hosts).toHaveLength(5);
      expect(counts.aws_vpc_security_group_ingress_rule + counts.aws_vpc_security_group_egress_rule).toBe(35);
    });

    it('hands Terraform the user-data exactly as rendered, as user_data_base64', () => {
      const instances = plan.resource_changes.filter((rc) => rc.type === 'aws_instance');
      const planned = instances.map((rc) => rc.change.after.user_data_base64).sort();
      expect(planned).toEqual(stack().hosts.map((h) => h.rendering.userData.base64).sort());
      for (const rc of instances) {
        expect(rc.change.after.user_data ?? null).toBeNull();
        expect(rc.change.after.user_data_replace_on_change).toBe(true);
        expect(rc.change.after.source_dest_check).toBe(true);
      }
    });
  });
});
