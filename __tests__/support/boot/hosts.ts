/**
 * What the boot tier boots: the example app's hosts, with their user-data exactly as Terraform
 * would pass it to EC2 (the stack's `aws_instance.user_data_base64`, decoded: gzip and all), and
 * the tables the host policy synthesized, in the kernel's canonical spelling. Besides the
 * example's own stacks (the default backend, nftables), the production stack again with
 * `hostFirewall: 'iptables'` on every host: ids `iptables/sample`, `iptables/resolver` ….
 */
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'cdktf';
import { HostFirewall } from '../../../lib';
import { TwinwallExampleStack, buildApp, environmentConfig } from '../../../main';

export interface BootHost {
  /** "production/sample", or "iptables/sample" (the production stack with the iptables backend). */
  readonly id: string;
  /** "production", "staging" or "iptables" (what TWINWALL_BOOT_HOSTS selects). */
  readonly stack: string;
  /** The host wall's backend its user-data ships. */
  readonly backend: HostFirewall;
  /** With the nftables backend: the wall (/etc/twinwall/twinwall.nft) and its fallback. */
  readonly nftables?: { readonly wall: string; readonly fallback?: string };
  readonly name: string;
  /** What EC2 hands the instance: base64-decoded user_data_base64 (may be gzip). */
  readonly userData: Buffer;
  /** The synthesized iptables-restore documents of the host policy. */
  readonly tables: { readonly v4: string; readonly v6: string };
  /** Its fallback (what a family whose table cannot load must end up with); absent with onLoadFailure open. */
  readonly fallback?: { readonly v4: string; readonly v6: string };
  /** The #cloud-config text the construct rendered (for the negative fixtures). */
  readonly cloudConfig: string;
}

interface TfInstance {
  readonly user_data_base64?: string;
  readonly '//'?: { metadata?: { path?: string } };
}

/** The stack id of the production stack synthesized with the iptables backend. */
export const IPTABLES_STACK = 'iptables';

/**
 * Synthesize the example app into `outdir` (in this process), and its production stack again with
 * the iptables backend into `outdir`-iptables, and read each host's user-data back from the
 * synthesized stack JSON, the file Terraform reads.
 */
export function synthesizeHosts(outdir: string): BootHost[] {
  const app = new App({ outdir });
  const hosts = readHosts(app, outdir, buildApp(app), (id) => id);
  const iptDir = `${outdir}-iptables`;
  const iptApp = new App({ outdir: iptDir });
  const iptStack = new TwinwallExampleStack(iptApp, 'production', environmentConfig(iptApp, 'production'), { hostFirewall: 'iptables' });
  return [...hosts, ...readHosts(iptApp, iptDir, [iptStack], () => IPTABLES_STACK)];
}

function readHosts(app: App, outdir: string, stacks: readonly TwinwallExampleStack[], label: (stack: string) => string): BootHost[] {
  app.synth();
  const hosts: BootHost[] = [];
  for (const stack of stacks) {
    const file = path.join(outdir, 'stacks', stack.node.id, 'cdk.tf.json');
    const tf = JSON.parse(fs.readFileSync(file, 'utf8')) as { resource?: { aws_instance?: Record<string, TfInstance> } };
    const instances = Object.values(tf.resource?.aws_instance ?? {});
    for (const host of stack.hosts) {
      const wanted = `${stack.node.id}/${host.node.id}/Instance`;
      const instance = instances.find((i) => i['//']?.metadata?.path === wanted);
      if (instance?.user_data_base64 === undefined) throw new Error(`${file}: no aws_instance with path ${wanted} and user_data_base64`);
      const r = host.rendering;
      hosts.push({
        id: `${label(stack.node.id)}/${host.node.id}`,
        stack: label(stack.node.id),
        name: host.node.id,
        backend: r.hostFirewall,
        ...(r.nftables === undefined ? {} : { nftables: { wall: r.nftables.text, ...(r.nftablesFallback === undefined ? {} : { fallback: r.nftablesFallback.text }) } }),
        userData: Buffer.from(instance.user_data_base64, 'base64'),
        tables: host.rendering.iptables,
        ...(host.rendering.fallback === undefined ? {} : { fallback: host.rendering.fallback }),
        cloudConfig: host.cloudConfig,
      });
    }
  }
  return hosts;
}

/**
 * The #cloud-config text the sample server's construct renders (nothing synthesized to disk):
 * `production/sample` with the example's backend (nftables), `iptables/sample` with the iptables one.
 */
export function sampleCloudConfig(id: 'production/sample' | 'iptables/sample'): string {
  const app = new App({ outdir: path.join(os.tmpdir(), 'twinwall-boot-fixture-check') });
  const config = environmentConfig(app, 'production');
  const stack = id === 'production/sample' ? buildApp(app).find((s) => s.node.id === 'production') : new TwinwallExampleStack(app, 'production', config, { hostFirewall: 'iptables' });
  const host = stack?.hosts.find((h) => h.node.id === 'sample');
  if (host === undefined) throw new Error('the example app has no production/sample host');
  return host.cloudConfig;
}

/**
 * The kernel's spelling of `tables`: load them with iptables-restore / ip6tables-restore into a
 * scratch network namespace on this machine and read them back with iptables-save /
 * ip6tables-save (which reorders and rewrites matches). The guest runs the same Debian iptables,
 * so its iptables-save must print exactly this.
 */
export function canonicalTables(tables: { readonly v4: string; readonly v6: string }): { v4: string; v6: string } {
  const ns = `twboot${process.pid % 100000}${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
  try {
    const inNs = (args: string[], input?: string): string =>
      execFileSync('ip', ['netns', 'exec', ns, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    inNs(['iptables-restore'], tables.v4);
    inNs(['ip6tables-restore'], tables.v6);
    return { v4: inNs(['iptables-save']), v6: inNs(['ip6tables-save']) };
  } finally {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'pipe' });
  }
}
