/**
 * What the boot tier boots: the example app's hosts, with their user-data exactly as Terraform
 * would pass it to EC2 (the stack's `aws_instance.user_data_base64`, decoded: gzip and all), and
 * the tables the host policy synthesized, in the kernel's canonical spelling.
 */
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'cdktf';
import { buildApp } from '../../../main';

export interface BootHost {
  /** "production/sample" */
  readonly id: string;
  readonly stack: string;
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

/**
 * Synthesize the example app into `outdir` (in this process) and read each host's user-data back
 * from the synthesized stack JSON, the file Terraform reads.
 */
export function synthesizeHosts(outdir: string): BootHost[] {
  const app = new App({ outdir });
  const stacks = buildApp(app);
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
      hosts.push({
        id: `${stack.node.id}/${host.node.id}`,
        stack: stack.node.id,
        name: host.node.id,
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
