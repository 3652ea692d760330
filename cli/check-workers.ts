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
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
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

/** Start one check worker: the compiled worker next to this file, or the sources through the dev loader. */
export function startCheckWorker(): Worker {
  if (path.extname(__filename) === '.js') return new Worker(path.join(__dirname, 'check-worker.js'));
  const loader = path.join(__dirname, '..', 'scripts', 'ts-loader.js');
  const entry = path.join(__dirname, 'check-worker.ts');
  return new Worker(`require(${JSON.stringify(loader)});\nrequire(${JSON.stringify(entry)});\n`, { eval: true });
}

function workerError(what: string, cause?: unknown): Error {
  const e = new Error(what);
  if (cause instanceof Error && cause.stack !== undefined) e.stack = `${e.stack}\nCaused by (in the worker): ${cause.stack}`;
  return e;
}

/**
 * Check the planned hosts on `count` worker threads (1: in this thread, `checkFleet`), handing
 * each verdict to `sink` in plan order as soon as every host before it is judged; nothing else
 * is kept. Rejects when any worker fails (the other workers are stopped), so a host nobody
 * judged can never pass.
 */
export async function checkOnWorkers(plan: PackedPlan, count: number, sink: (verdict: HostVerdict) => void, start: () => Worker = startCheckWorker): Promise<void> {
  const total = plan.hosts.length;
  if (count <= 1 || total <= 1) return checkFleet(plan, sink);
  const workers: Worker[] = [];
  try {
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
      for (let k = 0; k < Math.min(count, total); k++) {
        const name = `check worker ${k + 1} of ${count}`;
        const held = new Set<number>();
        const feed = (w: Worker) => {
          while (!settled && held.size < IN_FLIGHT && next < total) {
            const request: CheckRequest = { index: next, host: plan.hosts[next] };
            w.postMessage(request);
            held.add(next++);
          }
        };
        const w = start();
        workers.push(w);
        w.on('message', (m: { index: number; verdict: HostVerdict }) => {
          if (settled) return;
          try {
            if (!held.delete(m.index)) throw new Error(`${name} answered for host ${m.index}, which it was not holding`);
            arrived.set(m.index, m.verdict);
            for (let v = arrived.get(written); v !== undefined; v = arrived.get(written)) {
              arrived.delete(written++);
              sink(v);
            }
            if (written === total) {
              settled = true;
              resolve();
            } else feed(w);
          } catch (e) {
            fail(workerError((e as Error).message, e));
          }
        });
        w.on('error', (e) => fail(workerError(`${name} failed while checking ${held.size === 0 ? 'no host' : [...held].map((i) => hostLabel(plan.hosts[i])).join(', ')}: ${e.message}`, e)));
        w.on('messageerror', (e) => fail(workerError(`${name} sent a message that cannot be read: ${e.message}`, e)));
        w.on('exit', (code) => fail(new Error(`${name} stopped (exit code ${code}) before the check was done, holding ${held.size} unjudged host(s)`)));
        try {
          feed(w);
        } catch (e) {
          fail(workerError(`cannot send a host to ${name}: ${(e as Error).message}`, e));
        }
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
