/**
 * The contract between `npm run bench` (bench/run.ts) and each benchmark module
 * (`bench/*.bench.ts`). A module exports `run(context)`; the runner prints every result with the
 * machine info and writes docs/benchmarks.md. Benchmarks print ratios measured in the same run,
 * never absolute targets baked into tests.
 */
export interface BenchContext {
  /** Scratch directory for this run, removed afterwards. */
  readonly workDir: string;
  /** True when the machine can run kernel measurements (root, ip, iptables, ipset). */
  readonly kernel: boolean;
  /** Progress output (stderr). */
  log(message: string): void;
}

export interface BenchResult {
  /** Short name, e.g. "synth 1,000 hosts vs hand-written cdktf". */
  readonly name: string;
  /** The measured figures, human-readable, e.g. { "twinwall": "41.2 s", "baseline": "35.0 s" }. */
  readonly figures: Readonly<Record<string, string>>;
  /** The ratio that is compared with the target, e.g. 1.18. */
  readonly ratio?: number;
  /** The target, as text, e.g. "≤ 1.3×". */
  readonly target?: string;
  /** Whether the ratio meets the target (undefined when there is no target). */
  readonly met?: boolean;
  /** Why it was not measured, when it was skipped (e.g. "not root"). */
  readonly skipped?: string;
}

export interface BenchModule {
  run(context: BenchContext): Promise<BenchResult[]>;
}
