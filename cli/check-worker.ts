/**
 * A check worker thread (started by cli/check-workers.ts): receives one host's artefact at a
 * time, packed (lib/check/fleet.ts: bytes, transferred), checks it, and answers with the host's
 * verdict — never the models, which stay in this thread and are collected with the next host.
 * Anything thrown here ends the worker with an 'error' event, which the pool turns into an
 * internal error (exit 3).
 */
import { parentPort } from 'worker_threads';
import { PackedHost, checkHost, unpackHost, verdictOf } from './lib-check';

export interface CheckRequest {
  /** The host's place in the report. */
  readonly index: number;
  readonly host: PackedHost;
}

if (parentPort === null) throw new Error('cli/check-worker runs as a worker thread started by cli/check-workers.ts');
const port = parentPort;
port.on('message', (m: CheckRequest) => {
  port.postMessage({ index: m.index, verdict: verdictOf(checkHost(unpackHost(m.host))) });
});
