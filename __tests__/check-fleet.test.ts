/**
 * `twinwall check` over a fleet (issue #17): hosts judged one at a time and written as they are
 * judged (lib/check/fleet.ts), on worker threads (cli/check-workers.ts). The report is the one
 * the whole-check path writes (formatReport over checkStacks), byte for byte but each host's
 * "[N ms]", with 1 worker (in process) and with several, on the example app and on a generated
 * fleet with findings; the verdicts are written in plan order even when the workers answer out
 * of order; a packed host reads back as itself; a worker that fails is an internal error
 * (exit 3), never a pass. No timing is asserted (the bench measures speed and memory).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { FilteredHost } from '../constructs';
import { fleetRoles, hostName } from '../bench/fleet';
import { HostArtefact, HostVerdict, PackedPlan, StackInput, checkFleet, checkStacks, formatReport, hostLabel, packHost, packPlan, planFleet, unpackHost, verdictOf } from '../lib/check';
import { UsageError } from '../cli/artefacts';
import { CheckPool, WORKER_HEAP_MIB, checkOnWorkers, expectedWorkers, startCheckWorker, workerCount } from '../cli/check-workers';
import { EXIT } from '../cli/exit';
import { Json, clone, readStacks, resourceNamed, synthExample, writeStacks } from './support/artefacts';

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'scripts', 'twinwall-dev.js');
const FLEET = 40;
const cleanup: string[] = [];
let example: string;
let fleet: string;
let fleetStacks: StackInput[];
/** The example app's hosts (main.ts: both stacks). */
let exampleHosts: number;

function twinwall(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The report without the per-host timings, the only bytes that differ from run to run. */
const untimed = (text: string) => text.replace(/ \[\d+ ms\]$/gm, ' [ms]');

/** A fleet of the bench's hosts (four roles each), two of them with a finding each. */
function synthFleet(): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-fleet-'));
  const app = new App({ outdir, stackTraces: false });
  for (const [name, from, to] of [
    ['fleet-a', 0, FLEET / 2],
    ['fleet-b', FLEET / 2, FLEET],
  ] as const) {
    const stack = new TerraformStack(app, name);
    new AwsProvider(stack, 'aws', { region: 'eu-central-1' });
    for (let i = from; i < to; i++) {
      new FilteredHost(stack, hostName(i), { roles: fleetRoles(i), vpcId: 'vpc-0123456789abcdef0', instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' } });
    }
  }
  app.synth();
  // Findings on a host in each stack: an egress rule gone (host0007), an ingress rule gone (host0031).
  const stacks = readStacks(outdir).map((s) => ({ ...s, json: clone(s.json) }));
  for (const [stack, type, prefix] of [
    ['fleet-a', 'aws_vpc_security_group_egress_rule', 'host0007_egress-tcp-443-'],
    ['fleet-b', 'aws_vpc_security_group_ingress_rule', 'host0031_ingress-tcp-22-from-198-'],
  ]) {
    const tf = stacks.find((s) => s.name === stack)?.json as Json;
    const [name] = resourceNamed(tf, type, prefix);
    delete tf.resource[type][name];
  }
  fs.rmSync(outdir, { recursive: true, force: true });
  return writeStacks(stacks);
}

beforeAll(() => {
  example = synthExample();
  fleet = synthFleet();
  fleetStacks = readStacks(fleet);
  exampleHosts = planFleet(readStacks(example)).hosts.length;
  cleanup.push(example, fleet);
}, 120_000);

afterAll(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

describe('the report does not depend on how many workers judge the hosts', () => {
  it.each([
    ['the example app', () => example, () => exampleHosts, EXIT.ok],
    ['a generated fleet of 40 hosts in two stacks, two with findings', () => fleet, () => FLEET, EXIT.finding],
  ] as [string, () => string, () => number, number][])('%s: the same bytes with 1 worker (in process) and with 3, and the same as the whole-check report', (_what, dir, hosts, code) => {
    const whole = untimed(formatReport(checkStacks(readStacks(dir()))));
    expect(whole.trimEnd().split('\n').pop()).toMatch(new RegExp(`^twinwall check: .*\\b${hosts()} host\\(s\\)`));
    for (const workers of ['1', '3']) {
      const r = twinwall(['check', dir(), '--workers', workers]);
      expect({ workers, code: r.code, stderr: r.stderr }).toEqual({ workers, code, stderr: '' });
      expect(untimed(r.stdout)).toBe(whole);
    }
  }, 180_000);

  it('lists the findings of the fleet in plan order, each under its host', () => {
    const r = twinwall(['check', fleet, '--quiet', '--workers', '2']);
    const verdicts = r.stdout.split('\n').filter((l) => /^fleet-[ab]\//.test(l));
    expect(verdicts.map((l) => l.split(' ')[0])).toEqual(planFleet(fleetStacks).hosts.map((h) => `${h.stack}/${h.name}`));
    expect(verdicts.filter((l) => !l.includes('the walls agree')).map((l) => l.split(' ')[0])).toEqual(['fleet-a/host0007', 'fleet-b/host0031']);
    expect(r.stdout).toMatch(/^ {2}fleet-a\/host0007: egress tcp\/443 to .*: the host wall admits it .*, the network wall does not$/m);
    expect(r.stdout).toMatch(/^ {2}fleet-b\/host0031: ingress tcp\/22 from .*: the host wall admits it .*, the network wall does not$/m);
    expect(r.stdout).toMatch(/twinwall check: 2 finding\(s\) on 2 of 40 host\(s\)\n$/);
  }, 120_000);

  it('--host selects before judging, with the same lines', () => {
    const r = twinwall(['check', fleet, '--host', 'host0031', 'fleet-a/host0002', '--workers', '2']);
    expect(r.code).toBe(EXIT.finding);
    expect(r.stdout.split('\n').filter((l) => /^fleet-[ab]\//.test(l)).map((l) => l.split(' ')[0])).toEqual(['fleet-a/host0002', 'fleet-b/host0031']);
    const missing = twinwall(['check', fleet, '--host', 'nosuchhost']);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toMatch(/^twinwall: no host matches nosuchhost \(hosts: fleet-a\/host0000, fleet-a\/host0001, .*fleet-b\/host0039\)\n$/);
  }, 60_000);

  it.each([['0'], ['-1'], ['two'], ['1.5'], ['10000']])('--workers %s is bad usage: exit 2, one line', (n) => {
    const r = twinwall(['check', example, '--workers', n]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/^twinwall: .*--workers|^twinwall: option '--workers <n>' argument missing/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });
});

describe('worker count', () => {
  it('is one per core by default, in process below 16 hosts per worker, never more than the hosts', () => {
    expect(workerCount(undefined, 8, 2)).toBe(1);
    expect(workerCount(undefined, 31, 2)).toBe(1);
    expect(workerCount(undefined, 32, 2)).toBe(2);
    expect(workerCount(undefined, 1000, 2)).toBe(2);
    expect(workerCount(undefined, 1000, 8)).toBe(8);
    expect(workerCount(undefined, 40, 8)).toBe(2);
    expect(workerCount(4, 2, 2)).toBe(2);
    expect(workerCount(4, 1000, 2)).toBe(4);
    expect(workerCount(1, 1000, 8)).toBe(1);
    expect(workerCount(3, 0, 2)).toBe(1);
  });

  it("starts early what the input's size suggests (at least 8 KiB a host): the example in process, the fleet on every core", () => {
    const files = (dir: string) => readStacks(dir).map((s) => ({ file: path.join(dir, 'stacks', s.name, 'cdk.tf.json') }));
    expect(expectedWorkers(undefined, files(example), 2)).toBe(1);
    expect(expectedWorkers(undefined, files(fleet), 2)).toBe(2);
    expect(expectedWorkers(3, files(fleet), 2)).toBe(3);
    expect(expectedWorkers(undefined, [{ file: path.join(fleet, 'no-such-file') }], 2)).toBe(1);
  });
});

describe('packed hosts (what waits for its turn, and what a worker receives)', () => {
  const roundTrip = (h: HostArtefact) => unpackHost(structuredClone(packHost(h)));

  it('read back as themselves after a structured clone: every host of the example app and the fleet', () => {
    const hosts = [...readStacks(example), ...fleetStacks].flatMap((s) => planFleet([s]).hosts);
    expect(hosts.length).toBe(exampleHosts + FLEET);
    for (const h of hosts) expect(roundTrip(h)).toStrictEqual(h);
  });

  it('keep user-data byte for byte, whatever its characters (Latin-1, wide, a lone surrogate), and reference peers with their CIDRs', () => {
    const [base] = planFleet(readStacks(example)).hosts;
    for (const plain of ['#cloud-config\nÿ é', '#cloud-config\n— ∀ 🛡', '#cloud-config\n\ud800 lone', '']) {
      const h: HostArtefact = { ...base, userData: { plain } };
      expect(roundTrip(h)).toStrictEqual(h);
    }
    const withRefs = planFleet(readStacks(example)).hosts.find((h) => h.rules.some((r) => r.peer !== undefined && r.peer.kind !== 'cidr' && r.peer.cidrs !== undefined));
    expect(withRefs).toBeDefined();
    expect(roundTrip(withRefs as HostArtefact)).toStrictEqual(withRefs);
  });

  it('a plan keeps every host in order across its buffers, a host larger than a buffer in one of its own', () => {
    const base = planFleet(fleetStacks).hosts;
    // 2 MiB of user-data packs to more than one of the plan's 1 MiB buffers.
    const big: HostArtefact = { ...base[1], userData: { plain: `#cloud-config\n${'y'.repeat(2 << 20)}` } };
    const hosts = [...base.slice(0, 1), big, ...base.slice(2), ...base, ...base];
    const plan = packPlan({ hosts, problems: ['a problem'] });
    expect(plan.size).toBe(hosts.length);
    expect(plan.problems).toEqual(['a problem']);
    hosts.forEach((h, i) => expect(plan.host(i)).toStrictEqual(h));
    expect(unpackHost(plan.packed(1))).toStrictEqual(big);
    expect(plan.packed(1).byteOffset).toBe(0); // a buffer of its own, to transfer
    expect(() => plan.host(hosts.length)).toThrow(RangeError);
  });

  it('planning stack by stack (each stack parsed when asked) packs the plan planFleet makes, with its problems and --host selection', () => {
    const asked: string[] = [];
    const empty: StackInput = { name: 'empty', json: { resource: {} } };
    const stacks = [...fleetStacks, empty];
    function* lazily(): Generator<StackInput> {
      for (const s of stacks) {
        asked.push(s.name);
        yield s;
      }
    }
    const whole = planFleet(stacks);
    const plan = PackedPlan.plan(lazily());
    expect(asked).toEqual(['fleet-a', 'fleet-b', 'empty']);
    expect(plan.problems).toEqual(whole.problems);
    expect(plan.problems).toEqual(['stack empty has no aws_instance or aws_launch_template']);
    expect(Array.from({ length: plan.size }, (_, i) => plan.host(i))).toStrictEqual(whole.hosts);
    const some = PackedPlan.plan(stacks, (h) => h.name.endsWith('7'));
    expect(Array.from({ length: some.size }, (_, i) => hostLabel(some.host(i)))).toEqual(['fleet-a/host0007', 'fleet-a/host0017', 'fleet-b/host0027', 'fleet-b/host0037']);
    expect(PackedPlan.plan([]).problems).toEqual(['no stacks found']);
  });

  it('check as the artefact does: the in-process fleet check gives the verdicts of checkHost', () => {
    const plan = planFleet(fleetStacks);
    const streamed: HostVerdict[] = [];
    checkFleet(packPlan(plan), (v) => streamed.push(v));
    const whole = checkStacks(fleetStacks).hosts.map((h) => verdictOf(h));
    const noMs = (v: HostVerdict) => ({ ...v, ms: 0 });
    expect(streamed.map(noMs)).toEqual(whole.map(noMs));
  }, 120_000);
});

describe('worker threads', () => {
  /** A real check worker whose answers are held back a random while, so they arrive out of order. */
  const shuffled = (): Worker => {
    const w = startCheckWorker();
    const post = w.postMessage.bind(w);
    // Delay what this side sends, too: requests reach the workers in bursts.
    w.postMessage = (m: unknown) => void setTimeout(() => post(m), Math.floor(Math.random() * 30));
    return w;
  };

  it('hand the verdicts over in plan order even when the workers answer out of order', async () => {
    const plan = packPlan(planFleet(fleetStacks));
    const seen: string[] = [];
    await checkOnWorkers(plan, 3, (v) => seen.push(v.label), shuffled);
    expect(seen).toEqual(planFleet(fleetStacks).hosts.map((h) => `${h.stack}/${h.name}`));
  }, 120_000);

  it('workers started before the plan (a pool) judge it as workers started for it do: more, fewer or as many as it needs', async () => {
    const plan = packPlan(planFleet(fleetStacks));
    const expected = planFleet(fleetStacks).hosts.map(hostLabel);
    for (const [started, count] of [
      [2, 2],
      [3, 2],
      [1, 3],
    ]) {
      const pool = CheckPool.start(started);
      const seen: string[] = [];
      await checkOnWorkers(plan, count, (v) => seen.push(v.label), pool);
      expect({ started, count, seen }).toEqual({ started, count, seen: expected });
      expect(pool.size).toBe(0); // closed
    }
    const unused = CheckPool.start(2);
    const seen: string[] = [];
    await checkOnWorkers(plan, 1, (v) => seen.push(v.label), unused); // in process: the pool is closed
    expect({ size: unused.size, seen }).toEqual({ size: 0, seen: expected });
  }, 180_000);

  it('a worker of a pool that fails before the plan is ready fails the check', async () => {
    const plan = packPlan(planFleet(readStacks(example)));
    const stopped: Promise<unknown>[] = [];
    const pool = CheckPool.start(2, () => {
      const w = new Worker("throw new Error('cannot load the checker');", { eval: true });
      stopped.push(new Promise((resolve) => w.once('exit', resolve)));
      return w;
    });
    await Promise.all(stopped); // both failed (while the plan was being made) before the check begins
    await expect(checkOnWorkers(plan, 2, () => undefined, pool)).rejects.toThrow(/^check worker \d of 2 failed while checking no host: cannot load the checker$/);
    expect(pool.size).toBe(0);
  });

  it('a worker that throws rejects the check, naming the worker and the hosts it held', async () => {
    const plan = packPlan(planFleet(readStacks(example)));
    const throwing = () => new Worker("require('worker_threads').parentPort.on('message', () => { throw new Error('injected failure'); });", { eval: true });
    const seen: string[] = [];
    await expect(checkOnWorkers(plan, 2, (v) => seen.push(v.label), throwing)).rejects.toThrow(/^check worker \d of 2 failed while checking \w+\/\S+.*: injected failure$/);
    expect(seen).toEqual([]);
  });

  it('a worker that runs out of its heap stops the check as unreadable input (exit 2), naming the cap and --workers 1', async () => {
    const plan = packPlan(planFleet(readStacks(example)));
    // A worker capped as the real ones are, but at 16 MiB, that holds on to everything it makes.
    const hungry = () =>
      new Worker("const held = []; require('worker_threads').parentPort.on('message', () => { for (;;) held.push(new Array(1e5).fill(held.length)); });", { eval: true, resourceLimits: { maxOldGenerationSizeMb: 16 } });
    const seen: string[] = [];
    const run = checkOnWorkers(plan, 2, (v) => seen.push(v.label), hungry);
    await expect(run).rejects.toBeInstanceOf(UsageError);
    await expect(run).rejects.toThrow(new RegExp(`^check worker \\d of 2 ran out of memory while checking \\w+/\\S+.*\\(a check worker's heap is capped at ${WORKER_HEAP_MIB} MiB\\): the check did not finish; run it with --workers 1`));
    expect(seen).toEqual([]);
  }, 60_000);

  it("the real workers are capped (what keeps each worker's heap near its live size)", async () => {
    const w = startCheckWorker();
    try {
      // resourceLimits as the worker sees them: the cap given, the rest V8's defaults.
      expect(w.resourceLimits?.maxOldGenerationSizeMb).toBe(WORKER_HEAP_MIB);
    } finally {
      await w.terminate();
    }
  });

  it('a worker that exits rejects the check', async () => {
    const plan = packPlan(planFleet(readStacks(example)));
    const exiting = () => new Worker("require('worker_threads').parentPort.on('message', () => process.exit(7));", { eval: true });
    await expect(checkOnWorkers(plan, 2, () => undefined, exiting)).rejects.toThrow(/^check worker \d of 2 stopped \(exit code 7\) before the check was done, holding \d+ unjudged host\(s\)$/);
  });

  describe('a worker that fails in the real command is an internal error (exit 3), never a pass', () => {
    const preload = path.join(os.tmpdir(), `twinwall-crash-worker-${process.pid}.js`);
    beforeAll(() => {
      // Loaded into every thread (NODE_OPTIONS --require reaches worker threads): in a worker,
      // fail on the first host, by throwing or by exiting; the main thread is left alone.
      fs.writeFileSync(
        preload,
        "const wt = require('worker_threads');\nif (!wt.isMainThread) wt.parentPort.once('message', () => { if (process.env.TW_CRASH === 'exit') process.exit(9); throw new Error('injected worker crash'); });\n",
      );
    });
    afterAll(() => fs.rmSync(preload, { force: true }));

    it.each([['throw'], ['exit']])('a worker that fails by %s', (how) => {
      const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`, TW_CRASH: how };
      const r = twinwall(['check', fleet, '--workers', '2'], env);
      expect(r.code).toBe(EXIT.internal);
      expect(r.stderr).toMatch(how === 'throw' ? /^twinwall: internal error: check worker \d of 2 failed while checking .*injected worker crash — this is a bug in twinwall/ : /^twinwall: internal error: check worker \d of 2 stopped \(exit code 9\)/);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stdout).not.toMatch(/walls agree \(exceptions listed above\)|finding\(s\) on/);
      // The same command in process never starts a worker, so the preload changes nothing.
      const inProcess = twinwall(['check', example, '--workers', '1', '--quiet'], env);
      expect(inProcess.code).toBe(EXIT.ok);
      expect(inProcess.stdout).toMatch(new RegExp(`twinwall check: ${exampleHosts} host\\(s\\), the walls agree`));
    }, 120_000);
  });
});
