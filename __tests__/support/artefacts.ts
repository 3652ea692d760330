/**
 * Synthesized artefacts for the checker's tests: the example app synthesized once into a temp
 * directory (with the iptables wall where a test edits its tables), and mutations of its Terraform JSON and user-data (one change in one wall each).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { App } from 'cdktf';
import { ExampleStackOptions, buildApp } from '../../main';
import { StackInput } from '../../lib/check';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/**
 * Synthesize the example app into a fresh temp directory; returns the outdir (cdktf.out). The
 * hosts get the default backend (nftables) unless `options` chooses one: tests that edit
 * iptables tables in the user-data pass `{ hostFirewall: 'iptables' }`.
 */
export function synthExample(options: ExampleStackOptions = {}): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-example-'));
  const app = new App({ outdir });
  buildApp(app, options);
  app.synth();
  return outdir;
}

export function readStacks(outdir: string): StackInput[] {
  const dir = path.join(outdir, 'stacks');
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => ({ name, json: JSON.parse(fs.readFileSync(path.join(dir, name, 'cdk.tf.json'), 'utf8')) }));
}

/** Write stacks as a cdktf.out-shaped directory (for the CLI and verify). */
export function writeStacks(stacks: readonly StackInput[]): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-mutant-'));
  for (const s of stacks) {
    fs.mkdirSync(path.join(outdir, 'stacks', s.name), { recursive: true });
    fs.writeFileSync(path.join(outdir, 'stacks', s.name, 'cdk.tf.json'), JSON.stringify(s.json, null, 2));
  }
  return outdir;
}

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The resource of `type` whose name starts with `prefix` (exactly one). */
export function resourceNamed(tf: Json, type: string, prefix: string): [string, Json] {
  const hits = Object.entries((tf.resource?.[type] ?? {}) as Record<string, Json>).filter(([n]) => n.startsWith(prefix));
  if (hits.length !== 1) throw new Error(`${hits.length} ${type} resources start with ${prefix}`);
  return hits[0];
}

/** Decode an instance's user-data to its cloud-config object; `write` re-encodes a changed one. */
export function editUserData(instance: Json, edit: (cfg: Json) => void): void {
  let raw = Buffer.from(instance.user_data_base64, 'base64');
  const gz = raw[0] === 0x1f && raw[1] === 0x8b;
  if (gz) raw = zlib.gunzipSync(raw);
  const cfg = parseYaml(raw.toString('utf8'), { version: '1.1' });
  edit(cfg);
  const text = `#cloud-config\n${stringifyYaml(cfg, { lineWidth: 0, version: '1.1' })}`;
  const out = Buffer.from(text, 'utf8');
  instance.user_data_base64 = (gz ? zlib.gzipSync(out) : out).toString('base64');
}

/** Apply `change` to one table text (IPv4 or IPv6) in both copies: write_files and bootcmd. */
export function editTable(cfg: Json, family: 4 | 6, change: (table: string) => string): void {
  const file = (cfg.write_files as Json[]).find((f) => f.path === `/etc/iptables/rules.v${family}`);
  const before = file.content as string;
  const after = change(before);
  if (after === before) throw new Error('the table edit changed nothing');
  file.content = after;
  const boot = cfg.bootcmd[0] as string[];
  const i = boot.length - 1;
  if (!boot[i].includes(before)) throw new Error('bootcmd carries no copy of the table');
  boot[i] = boot[i].replace(before, after);
}

/** Remove one family's table entirely: the write_files entry and bootcmd's copy. */
export function removeTable(cfg: Json, family: 4 | 6): void {
  const path6 = `/etc/iptables/rules.v${family}`;
  const file = (cfg.write_files as Json[]).find((f) => f.path === path6);
  cfg.write_files = (cfg.write_files as Json[]).filter((f) => f.path !== path6);
  const boot = cfg.bootcmd[0] as string[];
  const i = boot.length - 1;
  const cmd = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  const delim = `TWINWALL_RULES_V${family}`;
  const start = boot[i].indexOf(`/usr/sbin/${cmd} <<'${delim}'`);
  const end = boot[i].indexOf(`\n${delim}\n`, start);
  if (start < 0 || end < 0 || file === undefined) throw new Error(`no IPv${family} table to remove`);
  boot[i] = boot[i].slice(0, start) + boot[i].slice(end + delim.length + 2);
}
