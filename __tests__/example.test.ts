/**
 * The example app as Terraform sees it: the synthesized JSON of each stack is a golden file
 * (reviewed in every pull request that changes it), and every host's user-data — decoded from
 * `user_data_base64` exactly as EC2 would receive it — is accepted by `cloud-init schema`, and its
 * wall by `nft -c` (the default backend). The same stacks with `hostFirewall: 'iptables'` (for
 * images that have iptables and not nft): their user-data too, and their tables by
 * `iptables-restore --test`.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { App } from 'cdktf';
import { parse } from 'yaml';
import { buildApp } from '../main';
import { NFT_FALLBACK_PATH, NFT_RULES_PATH } from '../lib/render';
import { expectGolden } from './support/golden';
import { describeTier, netns, nft, onPath, root } from './support/tiers';

interface Instance {
  readonly user_data_base64: string;
  readonly tags: Record<string, string>;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-example-'));
const outdir = path.join(work, 'cdktf.out');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const context = require('../cdktf.json').context;
const app = new App({ outdir, context });
buildApp(app);
app.synth();
// The same stacks with the iptables wall on every host.
const iptablesOutdir = path.join(work, 'cdktf.out-iptables');
const iptablesApp = new App({ outdir: iptablesOutdir, context });
buildApp(iptablesApp, { hostFirewall: 'iptables' });
iptablesApp.synth();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const STACKS = fs.readdirSync(path.join(outdir, 'stacks')).sort();

function stackJson(stack: string, dir = outdir): { resource: Record<string, Record<string, unknown>>; terraform: { backend: { local: { path: string } } } } {
  return JSON.parse(fs.readFileSync(path.join(dir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
}

/** Each host's user-data as EC2 would hand it to cloud-init ("iptables/staging/sample" from `iptablesOutdir`). */
function userData(stack: string, dir = outdir, label = ''): [string, string][] {
  const instances = stackJson(stack, dir).resource.aws_instance as Record<string, Instance>;
  return Object.values(instances).map((i) => {
    const raw = Buffer.from(i.user_data_base64, 'base64');
    const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
    return [`${label}${stack}/${i.tags['twinwall:host']}`, text];
  });
}

/** Every host with the default backend (nftables). */
const ALL = STACKS.flatMap((s) => userData(s));
/** Every host with `hostFirewall: 'iptables'`. */
const ALL_IPTABLES = STACKS.flatMap((s) => userData(s, iptablesOutdir, 'iptables/'));

describe('example app', () => {
  it('has the staging and production stacks, five hosts each', () => {
    expect(STACKS).toEqual(['production', 'staging']);
    expect(ALL.map(([host]) => host).sort()).toEqual([
      'production/app',
      'production/db',
      'production/resolver',
      'production/sample',
      'production/web',
      'staging/app',
      'staging/db',
      'staging/resolver',
      'staging/sample',
      'staging/web',
    ]);
  });

  it.each(STACKS)('%s synthesizes to its golden JSON', (stack) => {
    const json = stackJson(stack);
    // The local backend path is absolute (the clone's directory); everything else is stable.
    expect(path.basename(json.terraform.backend.local.path)).toBe(`terraform.${stack}.tfstate`);
    json.terraform.backend.local.path = `<cwd>/terraform.${stack}.tfstate`;
    expectGolden(`synth/${stack}.cdk.tf.json`, JSON.stringify(json, null, 2) + '\n');
  });

  it('gives the sample server no egress but SMTP and DNS on the network wall', () => {
    for (const stack of STACKS) {
      const egress = Object.values(stackJson(stack).resource.aws_vpc_security_group_egress_rule as Record<string, { security_group_id: string; ip_protocol: string; from_port?: number; to_port?: number }>);
      const sample = egress.filter((r) => r.security_group_id.includes('sample'));
      expect(sample.length).toBeGreaterThan(0);
      const ports = new Set(sample.map((r) => `${r.ip_protocol}/${r.from_port}-${r.to_port}`));
      expect([...ports].sort()).toEqual(['tcp/25-25', 'tcp/53-53', 'udp/53-53']);
    }
  });

  it.each(ALL)('%s: the user-data carries the nftables wall and its fallback, identical in bootcmd and write_files, and no iptables table', (_host, text) => {
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(text) as { write_files: { path: string; content: string }[]; bootcmd: unknown[] };
    const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
    const boot = JSON.stringify(doc.bootcmd);
    expect(Object.keys(files).filter((f) => f.startsWith('/etc/iptables/'))).toEqual([]);
    for (const file of [NFT_RULES_PATH, NFT_FALLBACK_PATH]) {
      expect(files[file]).toMatch(/^table inet twinwall \{$/m);
      for (const hook of ['input', 'forward', 'output']) expect(files[file]).toContain(`type filter hook ${hook} priority filter; policy drop;`);
      // bootcmd's here-document carries the file whole.
      expect(boot).toContain(JSON.stringify(files[file]).slice(1, -1));
    }
  });

  it('gives the iptables stacks the same security groups: only the user-data and the backend recorded in the tag differ', () => {
    for (const stack of STACKS) {
      const strip = (dir: string) => {
        const json = stackJson(stack, dir) as unknown as { resource: Record<string, Record<string, Record<string, unknown>>>; terraform: unknown };
        for (const i of Object.values(json.resource.aws_instance)) delete i.user_data_base64;
        for (const g of Object.values(json.resource.aws_security_group)) {
          const tags = g.tags as Record<string, string>;
          if (tags['twinwall:host-wall'] !== undefined) tags['twinwall:host-wall'] = tags['twinwall:host-wall'].replace(/ hostFirewall=(iptables|nftables) /, ' hostFirewall=… ');
        }
        json.terraform = undefined;
        return json;
      };
      expect(JSON.stringify(stackJson(stack))).toMatch(/ hostFirewall=nftables /);
      expect(JSON.stringify(stackJson(stack, iptablesOutdir))).toMatch(/ hostFirewall=iptables /);
      expect(strip(iptablesOutdir)).toEqual(strip(outdir));
    }
  });

  it.each(ALL_IPTABLES)('%s: the user-data carries both tables, identical in bootcmd and write_files', (_host, text) => {
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const doc = parse(text) as { write_files: { path: string; content: string }[]; bootcmd: unknown[] };
    const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
    const boot = JSON.stringify(doc.bootcmd);
    for (const table of ['/etc/iptables/rules.v4', '/etc/iptables/rules.v6']) {
      expect(files[table]).toContain(':OUTPUT DROP [0:0]');
      for (const line of files[table].split('\n').filter((l) => l.startsWith('-A '))) expect(boot).toContain(JSON.stringify(line).slice(1, -1));
    }
  });
});

describeTier('cloud-init schema (example app)', [onPath('cloud-init')], () => {
  it.each([...ALL, ...ALL_IPTABLES])('%s', (host, text) => {
    const file = path.join(work, `${host.replace(/\//g, '-')}.yaml`);
    fs.writeFileSync(file, text);
    const r = spawnSync('cloud-init', ['schema', '--config-file', file], { encoding: 'utf8' });
    expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: `Valid cloud-config: ${file}` });
  });
});

describeTier('nft -c (example app)', [root, onPath('ip'), onPath('nft'), netns, nft], () => {
  it.each(ALL)('%s: the fallback and the wall', (host, text) => {
    const doc = parse(text) as { write_files: { path: string; content: string }[] };
    // -c parses each file and checks its transaction against the kernel without committing it,
    // in a namespace of this test's own.
    const ns = `twexnft${process.pid}${host.replace(/\W/g, '').slice(-12)}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      for (const f of doc.write_files.filter((w) => w.path === NFT_FALLBACK_PATH || w.path === NFT_RULES_PATH)) {
        const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', '-'], { input: f.content, encoding: 'utf8' });
        expect({ file: f.path, status: r.status, stderr: r.stderr }).toEqual({ file: f.path, status: 0, stderr: '' });
      }
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
    expect(doc.write_files.filter((w) => w.path === NFT_FALLBACK_PATH || w.path === NFT_RULES_PATH)).toHaveLength(2);
  });
});

describeTier('iptables-restore --test (example app, hostFirewall iptables)', [root, onPath('iptables-restore'), onPath('ip6tables-restore')], () => {
  it.each(ALL_IPTABLES)('%s', (_host, text) => {
    const doc = parse(text) as { write_files: { path: string; content: string }[] };
    for (const f of doc.write_files.filter((w) => w.path.startsWith('/etc/iptables/'))) {
      const tool = f.path.endsWith('.v6') ? 'ip6tables-restore' : 'iptables-restore';
      const r = spawnSync(tool, ['--test'], { input: f.content, encoding: 'utf8' });
      expect({ table: f.path, status: r.status, stderr: r.stderr }).toEqual({ table: f.path, status: 0, stderr: '' });
    }
  });
});
