/**
 * Child process of the fleet check benchmark (check-fleet.bench.ts), run like the CLI (the
 * sources through scripts/ts-loader.js): loads what `twinwall check` loads, and with a
 * directory argument does the part of a check that grows with the input, as `check` does it —
 * read, JSON.parse, the shape gate, plan and pack the hosts, stack by stack — and nothing else.
 * Its peak RSS, against the same process without an argument, is the input's share of the
 * check's peak.
 */
import { stackFiles } from '../cli/artefacts';
import { packedPlan } from '../cli/main';

const dir = process.argv[2];
const plan = dir === undefined ? undefined : packedPlan(stackFiles(dir));
process.stdout.write(`${plan?.size ?? 0}\n`);
