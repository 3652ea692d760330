/**
 * Child process of the fleet check benchmark (check-fleet.bench.ts), run like the CLI (the
 * sources through scripts/ts-loader.js): loads what `twinwall check` loads, and with a
 * directory argument does the part of a check that grows with the input — read, JSON.parse, the
 * shape gate, plan and pack the hosts — and nothing else. Its peak RSS, against the same
 * process without an argument, is the input's share of the check's peak.
 */
import { loadStacks } from '../cli/artefacts';
import '../cli/main';
import { packPlan, planFleet } from '../lib/check';

const dir = process.argv[2];
const plan = dir === undefined ? undefined : packPlan(planFleet(loadStacks(dir)));
process.stdout.write(`${plan?.hosts.length ?? 0}\n`);
