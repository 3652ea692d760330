/**
 * Benchmark 5: `twinwall check` and `twinwall verify` per host on the example app's synthesized
 * output. check is measured twice: the work per host (read the host's artefacts, model both
 * walls, compare — `checkHost`, in process; this is what the < 100 ms target is about, since a
 * CI run checking a fleet starts Node once), and the CLI as a user runs it, one `--host` at a
 * time (a fresh Node process each time, its transpile cache warm), whose floor is Node's start-up.
 * verify is the CLI's wall time per host, namespaces and real packets included.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'cdktf';
import { buildApp } from '../main';
import { checkHost } from '../lib/check/compare';
import { readStack } from '../lib/check/terraform';
import { loadStacks } from '../cli/artefacts';
import { median } from './ns';
import { BenchContext, BenchModule, BenchResult } from './types';

// The CLI from the sources (transpiled once, then cached): what `npm run twinwall` runs; the
// published bin runs the same code compiled, at the same speed once the cache is warm.
const CLI = path.join(__dirname, '..', 'scripts', 'twinwall-dev.js');

function cli(args: string[]): { ms: number; status: number | null; out: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, status: r.status, out: r.stdout + r.stderr };
}

const module_: BenchModule = {
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const checkName = 'twinwall check, per host (read + model + compare, in process)';
    const checkCliName = 'twinwall check --host, per host (CLI as a user runs it, Node start-up included)';
    const verifyName = 'twinwall verify, per host (CLI, real packets in network namespaces)';
    if (!fs.existsSync(CLI) || !fs.existsSync(path.join(__dirname, '..', 'cli', 'main.ts'))) {
      const why = 'the twinwall CLI (scripts/twinwall-dev.js, cli/main.ts) is not in this tree yet';
      return [
        { name: checkName, figures: {}, target: '< 100 ms', skipped: why },
        { name: verifyName, figures: {}, target: '< 5 s', skipped: why },
      ];
    }
    const out = path.join(ctx.workDir, 'cdktf.out');
    const app = new App({ outdir: out, stackTraces: false });
    const stacks = buildApp(app);
    app.synth();
    const hosts = stacks.flatMap((s) => s.hosts.map((h) => `${s.node.id}/${h.policy.name}`));
    cli(['check', out, '--host', hosts[0]]); // warm the CLI's transpile cache
    const checks: number[] = [];
    const statuses = new Set<number | null>();
    for (const host of hosts) {
      const runs = [0, 1, 2].map(() => cli(['check', out, '--host', host]));
      runs.forEach((r) => statuses.add(r.status));
      checks.push(median(runs.map((r) => r.ms)));
      ctx.log(`check ${host}: ${checks[checks.length - 1].toFixed(0)} ms (exit ${runs[0].status})`);
    }
    const results: BenchResult[] = [];
    // In process: every host's own work, median of five runs each.
    const inProcess: number[] = [];
    let agree = true;
    for (const stack of loadStacks(out)) {
      const text = JSON.stringify(stack.json);
      for (let h = 0; h < readStack(stack.name, stack.json).length; h++) {
        const runs: number[] = [];
        for (let k = 0; k < 5; k++) {
          const t = process.hrtime.bigint();
          const host = readStack(stack.name, JSON.parse(text))[h];
          const result = checkHost(host);
          runs.push(Number(process.hrtime.bigint() - t) / 1e6);
          if (result.findings.length > 0) agree = false;
        }
        inProcess.push(median(runs));
      }
    }
    const worstInProcess = Math.max(...inProcess);
    results.push({
      name: checkName,
      figures: { hosts: String(inProcess.length), median: `${median(inProcess).toFixed(1)} ms`, 'slowest host': `${worstInProcess.toFixed(1)} ms`, 'walls agree': agree ? 'yes' : 'no' },
      ratio: worstInProcess / 100,
      target: '< 100 ms (ratio: slowest host / 100 ms, < 1 to meet)',
      met: worstInProcess < 100 && agree,
    });
    const worstCheck = Math.max(...checks);
    results.push({
      name: checkCliName,
      figures: { hosts: String(hosts.length), 'median of the per-host medians': `${median(checks).toFixed(0)} ms`, 'slowest host': `${worstCheck.toFixed(0)} ms`, 'exit codes': [...statuses].join(', ') },
    });
    if (!ctx.kernel) {
      results.push({ name: verifyName, figures: {}, target: '< 5 s', skipped: 'needs root, ip, iptables and network namespaces' });
      return results;
    }
    const verifies: number[] = [];
    const vstatus = new Set<number | null>();
    for (const host of hosts) {
      const r = cli(['verify', out, '--host', host]);
      vstatus.add(r.status);
      verifies.push(r.ms);
      ctx.log(`verify ${host}: ${(r.ms / 1000).toFixed(2)} s (exit ${r.status})${r.status === 0 ? '' : `: ${r.out.slice(-300)}`}`);
    }
    const worstVerify = Math.max(...verifies);
    results.push({
      name: verifyName,
      figures: { hosts: String(hosts.length), median: `${(median(verifies) / 1000).toFixed(2)} s`, 'slowest host': `${(worstVerify / 1000).toFixed(2)} s`, 'exit codes': [...vstatus].join(', ') },
      ratio: worstVerify / 5000,
      target: '< 5 s (ratio: slowest host / 5 s, < 1 to meet)',
      met: worstVerify < 5000 && [...vstatus].every((s) => s === 0),
    });
    return results;
  },
};

export const run = module_.run;
export default module_;
