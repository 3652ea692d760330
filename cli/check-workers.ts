/**
 * `twinwall check` on worker threads: the planned hosts (lib/check/fleet.ts) are judged by N
 * worker threads (cli/check-worker.ts), one per core by default, each host sent packed as a
 * worker asks for more; the verdicts are written in plan order as they come in, so the
 * report is byte for byte the one a single thread writes (only each host's "[N ms]" is its own
 * measurement). A worker that fails — an exception, an exit, a message that cannot be read —
 * fails the whole check as an internal error (exit 3): a host nobody judged is never a pass.
 *
 * The worker runs the compiled dist/cli/check-worker.js when this file is compiled (the
 * published bin), and the TypeScript sources through scripts/ts-loader.js when this file is
 * itself a source (`npm run twinwall`, scripts/twinwall-dev.js, the tests).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Worker } from 'worker_threads';
import { UsageError } from './artefacts';
import { HostVerdict, PackedPlan, checkFleet, hostLabel } from './lib-check';
import type { CheckRequest } from './check-worker';

/** One worker per core. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : Math.max(1, os.cpus().length);
}

/**
 * Below this many hosts per worker the default is to check in process: starting a worker (a
 * new isolate that loads the checker) costs about as much as checking a few hosts.
 */
export const MIN_HOSTS_PER_WORKER = 16;

/** How many hosts a worker holds at once: one being checked, the next ones already sent. */
const IN_FLIGHT = 3;

/**
 * The number of workers for `hosts` hosts: `requested` (`--workers`), else one per core, but
 * never more than there are hosts, and by default in process (1) below MIN_HOSTS_PER_WORKER
 * hosts per worker.
 */
export function workerCount(requested: number | undefined, hosts: number, cores = coreCount()): number {
  const n = requested ?? Math.min(cores, Math.floor(hosts / MIN_HOSTS_PER_WORKER));
  return Math.max(1, Math.min(n, hosts));
}

/**
 * What a host takes of a cdk.tf.json at least, for the estimate below: twinwall's hosts take
 * 13–14 KiB each (the example app, the bench fleet), most of it the user-data.
 */
const HOST_BYTES_ESTIMATE = 8 * 1024;

/**
 * The workers worth starting before the input is read, so that their start-up overlaps the
 * reading: what `workerCount` is expected to choose for hosts of at least HOST_BYTES_ESTIMATE
 * bytes each. An estimate only decides when workers start: once the hosts are known
 * `workerCount` decides how many check, the others stop, and any missing start then.
 */
export function expectedWorkers(requested: number | undefined, files: readonly { readonly file: string }[], cores = coreCount()): number {
  let bytes = 0;
  for (const f of files) {
    try {
      bytes += fs.statSync(f.file).size;
    } catch {
      // Reading it will say why.
    }
  }
  return workerCount(requested, Math.floor(bytes / HOST_BYTES_ESTIMATE), cores);
}

/**
 * The cap on each check worker's old generation, in MiB. A cap is what makes V8 keep a worker's
 * heap near what it holds: V8 lets a heap grow by a factor of its live size between full
 * collections, and that factor falls from 4 to about 1.6 when the cap is 1 GiB or less (V8's
 * heap controller). A worker holds one host's check at a time (about 12 MiB live at 1,000 bench
 * hosts), but without the cap its heap grew with every host it checked, up to some 140 MiB,
 * twice over on two workers (issue #17: peak memory 1.37× at 1,000 hosts against 300; with the
 * cap 1.1–1.2×). A host whose check needs more than the cap ends its worker, and `check` then
 * stops with exit 2 saying so (see CheckPool); `--workers 1` checks in process, without the cap.
 */
export const WORKER_HEAP_MIB = 1024;

/** Start one check worker: the compiled worker next to this file, or the sources through the dev loader. */
export function startCheckWorker(): Worker {
  const options = { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MIB } };
  if (path.extname(__filename) === '.js') return new Worker(path.join(__dirname, 'check-worker.js'), options);
  const loader = path.join(__dirname, '..', 'scripts', 'ts-loader.js');
  const entry = path.join(__dirname, 'check-worker.ts');
  return new Worker(`require(${JSON.stringify(loader)});\nrequire(${JSON.stringify(entry)});\n`, { eval: true, ...options });
}

function workerError(what: string, cause?: unknown): Error {
  const e = new Error(what);
  if (cause instanceof Error && cause.stack !== undefined) e.stack = `${e.stack}\nCaused by (in the worker): ${cause.stack}`;
  return e;
}

/** One worker of a pool, and the hosts it holds (sent, not yet answered). */
interface Slot {
  readonly worker: Worker;
  name: string;
  readonly held: Set<number>;
  /** Set when the pool stops it on purpose: its exit is then no failure. */
  stopping: boolean;
}

/**
 * Check worker threads, started before the plan is ready: a worker spends its first moments
 * loading the checker (a new isolate, its own module loader), which then overlaps the main
 * thread's reading, parsing and packing of the input instead of following it. A worker that fails
 * at any time (an exception, an exit, an unreadable message) fails the check it is part of, or the
 * next one when it fails before any: a host nobody judged can never pass. `close` stops them all.
 */
export class CheckPool {
  /** Start `count` workers now. */
  public static start(count: number, start: () => Worker = startCheckWorker): CheckPool {
    const pool = new CheckPool(start);
    for (let k = 0; k < count; k++) pool.spawn(`check worker ${k + 1} of ${count}`);
    return pool;
  }

  private readonly slots: Slot[] = [];
  /** What failed, when a worker failed before or during a check. */
  private failure: Error | undefined;
  /** The check in progress: told of a failure as soon as it happens. */
  private onFailure: ((e: Error) => void) | undefined;

  private constructor(private readonly start: () => Worker) {}

  /** How many workers are running. */
  public get size(): number {
    return this.slots.length;
  }

  private spawn(name: string): void {
    const slot: Slot = { worker: this.start(), name, held: new Set(), stopping: false };
    this.slots.push(slot);
    const held = (): string => (slot.held.size === 0 ? 'no host' : [...slot.held].map((i) => this.labels?.(i) ?? `host ${i}`).join(', '));
    slot.worker.on('error', (e) => {
      // Out of its heap: not a bug, but a check this worker cannot finish; never a pass.
      if ((e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.fail(new UsageError(`${slot.name} ran out of memory while checking ${held()} (a check worker's heap is capped at ${WORKER_HEAP_MIB} MiB): the check did not finish; run it with --workers 1 (in this process, where the heap has no such cap)`));
      } else this.fail(workerError(`${slot.name} failed while checking ${held()}: ${e.message}`, e));
    });
    slot.worker.on('messageerror', (e) => this.fail(workerError(`${slot.name} sent a message that cannot be read: ${e.message}`, e)));
    slot.worker.on('exit', (code) => {
      if (!slot.stopping) this.fail(new Error(`${slot.name} stopped (exit code ${code}) before the check was done, holding ${slot.held.size} unjudged host(s)`));
    });
  }

  private labels: ((i: number) => string) | undefined;

  private fail(e: Error): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    this.onFailure?.(e);
  }

  /**
   * Check the planned hosts on `count` of the pool's workers (the others are stopped, the missing
   * ones started), handing
   * each verdict to `sink` in plan order as soon as every host before it is judged; nothing else
   * is kept. Rejects when any worker fails.
   */
  public async run(plan: PackedPlan, count: number, sink: (verdict: HostVerdict) => void): Promise<void> {
    const total = plan.size;
    const n = Math.max(1, Math.min(count, total));
    await this.stop(this.slots.splice(n));
    while (this.slots.length < n) this.spawn('');
    this.labels = (i) => hostLabel(plan.host(i));
    const slots = this.slots;
    slots.forEach((slot, k) => (slot.name = `check worker ${k + 1} of ${slots.length}`));
    if (this.failure !== undefined) throw this.failure;
    if (total === 0) return;
    await new Promise<void>((resolve, reject) => {
      let next = 0; // the next host to send
      let written = 0; // the next host to hand to sink
      const arrived = new Map<number, HostVerdict>(); // judged, waiting for an earlier host
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      this.onFailure = fail;
      for (const slot of slots) {
        const feed = () => {
          while (!settled && slot.held.size < IN_FLIGHT && next < total) {
            const host = plan.packed(next);
            const request: CheckRequest = { index: next, host };
            slot.worker.postMessage(request, [host.buffer as ArrayBuffer]);
            slot.held.add(next++);
          }
        };
        slot.worker.on('message', (m: { index: number; verdict: HostVerdict }) => {
          if (settled) return;
          try {
            if (!slot.held.delete(m.index)) throw new Error(`${slot.name} answered for host ${m.index}, which it was not holding`);
            arrived.set(m.index, m.verdict);
            for (let v = arrived.get(written); v !== undefined; v = arrived.get(written)) {
              arrived.delete(written++);
              sink(v);
            }
            if (written === total) {
              settled = true;
              resolve();
            } else feed();
          } catch (e) {
            fail(workerError((e as Error).message, e));
          }
        });
        try {
          feed();
        } catch (e) {
          fail(workerError(`cannot send a host to ${slot.name}: ${(e as Error).message}`, e));
        }
      }
    }).finally(() => (this.onFailure = undefined));
  }

  private async stop(slots: readonly Slot[]): Promise<void> {
    for (const s of slots) s.stopping = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Stop every worker. */
  public async close(): Promise<void> {
    await this.stop(this.slots.splice(0));
  }
}

/**
 * One full collection between planning and checking in this thread. V8 sets a heap's next limit
 * from what its last full collection found alive, and that ran while the parsed input was
 * (JSON.parse's tree of a whole stack); the checks' garbage then filled a heap sized for the
 * input, so the in-process peak grew with the fleet beyond the input itself (1,000 bench hosts:
 * 220 MB against 181 MB after one collection here; 300 hosts: 155 MB against 144 MB). The plan
 * is packed outside the heap, so what survives this collection is Node and the checker (about
 * 11 MB). Node exposes a collection only behind --expose-gc, set here for this process; if that
 * is refused, the check runs as it would have, only with a larger heap.
 */
function collectBeforeChecking(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc === 'function') gc();
  } catch {
    // Memory only: nothing a check decides depends on it.
  }
}

/**
 * Check the planned hosts on `count` worker threads (1: in this thread, `checkFleet`), handing
 * each verdict to `sink` in plan order as soon as every host before it is judged; nothing else
 * is kept. Rejects when any worker fails (the other workers are stopped), so a host nobody
 * judged can never pass. `pool`: workers started earlier (CheckPool.start), used and closed.
 */
export async function checkOnWorkers(plan: PackedPlan, count: number, sink: (verdict: HostVerdict) => void, start: (() => Worker) | CheckPool = startCheckWorker): Promise<void> {
  const total = plan.size;
  if (count <= 1 || total <= 1) {
    if (start instanceof CheckPool) await start.close();
    collectBeforeChecking();
    return checkFleet(plan, sink);
  }
  const pool = start instanceof CheckPool ? start : CheckPool.start(Math.min(count, total), start);
  try {
    await pool.run(plan, count, sink);
  } finally {
    await pool.close();
  }
}
