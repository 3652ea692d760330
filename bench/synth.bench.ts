/**
 * Benchmark 1: synth of a 1,000-host fleet (4 roles per host, both walls) with twinwall, against
 * the hand-written cdktf baseline (bench/fleet-baseline.ts) creating the same security groups,
 * rules and instances. Each program runs in its own child process (same loader, same Node), so
 * wall time and peak RSS are its own; the two outputs are checked to hold the same resources.
 * The loader is scripts/ts-loader.js with a warm cache (each program runs once on two hosts
 * before any timing), so neither side pays for transpiling TypeScript: a user's program loads
 * twinwall's compiled JavaScript (dist/), and ts-node transpiling twinwall's sources on every
 * start was about 2 s of the twinwall side alone.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { renderHost } from '../lib';
import type { BaselineHost } from './fleet-baseline';
import { FLEET_SIZE, fleetPolicy } from './fleet';
import { BenchContext, BenchModule, BenchResult } from './types';

interface ChildFigures {
  readonly wallMs: number;
  readonly maxRssKb: number;
  readonly resources: Record<string, number>;
}

const LOADER = path.join(__dirname, '..', 'scripts', 'ts-loader.js');

function runChild(ctx: BenchContext, script: string, args: string[]): ChildFigures {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['-r', LOADER, path.join(__dirname, script), ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const own = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { maxRssKb: number };
  const out = JSON.parse(fs.readFileSync(path.join(args[0], 'stacks', 'fleet', 'cdk.tf.json'), 'utf8')) as { resource: Record<string, Record<string, unknown>> };
  const resources = Object.fromEntries(Object.entries(out.resource).map(([type, byName]) => [type, Object.keys(byName).length]));
  ctx.log(`${script}: ${(wallMs / 1000).toFixed(1)} s, peak RSS ${(own.maxRssKb / 1024).toFixed(0)} MiB`);
  return { wallMs, maxRssKb: own.maxRssKb, resources };
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const size = Number(process.env.TWINWALL_BENCH_FLEET ?? FLEET_SIZE);
    // The baseline's literal data, prepared before any timing.
    const hosts: BaselineHost[] = [];
    for (let i = 0; i < size; i++) {
      const r = renderHost(fleetPolicy(i));
      hosts.push({ name: r.policy.name, roles: r.policy.roles.map((x) => x.name).join(' '), rules: r.securityGroups.rules, userDataBase64: r.userData.base64 });
    }
    const data = path.join(ctx.workDir, 'baseline.json');
    fs.writeFileSync(data, JSON.stringify(hosts));
    // Warm the loader's cache: both programs once on two hosts, untimed.
    const warm = path.join(ctx.workDir, 'baseline-warm.json');
    fs.writeFileSync(warm, JSON.stringify(hosts.slice(0, 2)));
    runChild(ctx, 'fleet-baseline.ts', [path.join(ctx.workDir, 'warm-baseline'), warm]);
    runChild(ctx, 'fleet-twinwall.ts', [path.join(ctx.workDir, 'warm-twinwall'), '2']);
    // Alternating rounds, the best of each side: one round moved the ratio from 1.52× to 1.93×
    // between two quiet runs of the same code (2026-12-01).
    const rounds = Number(process.env.TWINWALL_BENCH_ROUNDS ?? 3);
    const tw: ChildFigures[] = [];
    const base: ChildFigures[] = [];
    for (let k = 0; k < rounds; k++) {
      base.push(runChild(ctx, 'fleet-baseline.ts', [path.join(ctx.workDir, `baseline-${k}`), data]));
      tw.push(runChild(ctx, 'fleet-twinwall.ts', [path.join(ctx.workDir, `twinwall-${k}`), String(size)]));
    }
    const noLint = runChild(ctx, 'fleet-twinwall.ts', [path.join(ctx.workDir, 'twinwall-without-lint'), String(size), '--without-lint']);
    const best = (xs: ChildFigures[], f: (x: ChildFigures) => number) => Math.min(...xs.map(f));
    const same = ['aws_security_group', 'aws_vpc_security_group_ingress_rule', 'aws_vpc_security_group_egress_rule', 'aws_instance'].every((t) => tw[0].resources[t] === base[0].resources[t]);
    const counts = ['aws_security_group', 'aws_vpc_security_group_ingress_rule', 'aws_vpc_security_group_egress_rule', 'aws_instance'].map((t) => `${tw[0].resources[t] ?? 0} ${t}`).join(', ');
    if (!same) throw new Error(`the two programs do not create the same resources: twinwall ${JSON.stringify(tw[0].resources)}, baseline ${JSON.stringify(base[0].resources)}`);
    const time = best(tw, (x) => x.wallMs) / best(base, (x) => x.wallMs);
    const mem = best(tw, (x) => x.maxRssKb) / best(base, (x) => x.maxRssKb);
    const common = { hosts: String(size), resources: counts, rounds: String(rounds) };
    return [
      {
        name: `synth ${size.toLocaleString('en')} hosts, wall time: twinwall vs hand-written cdktf`,
        figures: {
          ...common,
          twinwall: `${(best(tw, (x) => x.wallMs) / 1000).toFixed(1)} s`,
          baseline: `${(best(base, (x) => x.wallMs) / 1000).toFixed(1)} s`,
          'twinwall with the lint Aspect off (attribution only)': `${(noLint.wallMs / 1000).toFixed(1)} s (${(noLint.wallMs / best(base, (x) => x.wallMs)).toFixed(2)}× the baseline)`,
        },
        ratio: time,
        target: '≤ 1.3×',
        met: time <= 1.3,
      },
      {
        name: `synth ${size.toLocaleString('en')} hosts, peak memory: twinwall vs hand-written cdktf`,
        figures: { twinwall: `${(best(tw, (x) => x.maxRssKb) / 1024).toFixed(0)} MiB`, baseline: `${(best(base, (x) => x.maxRssKb) / 1024).toFixed(0)} MiB` },
        ratio: mem,
        target: '≤ 1.5×',
        met: mem <= 1.5,
      },
    ];
  },
};

export const run = module_.run;
export default module_;
