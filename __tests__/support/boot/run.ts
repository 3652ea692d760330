/**
 * One host of the boot tier: a fresh copy-on-write disk over the cached image, a NoCloud seed
 * with its user-data and a fixed instance id, and two boots of it — the instance's first boot
 * and the next one, same instance id, same disk. Each boot is judged from its serial log.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BootImage } from './image';
import { Accel, createOverlay, createSeed, runQemu } from './qemu';
import { BootJudgement, Expected, FailingWall, judgeBoot, normaliseSave, parseSerialLog } from './report';

export interface BootRecord {
  readonly boot: 1 | 2;
  readonly seconds: number;
  /** qemu's CPU time for this boot (QemuRun.cpuSeconds). */
  readonly cpuSeconds: number;
  readonly outcome: string;
  readonly serialLog: string;
  readonly judgement: BootJudgement;
}

export interface BootPlan {
  /** "bookworm production/sample", or "trixie fixture v4-parse-failure". */
  readonly label: string;
  readonly userData: Buffer;
  /**
   * Canonical iptables-save / ip6tables-save text of what each family must end up with (an
   * nftables host: both empty, no iptables rule may be loaded).
   */
  readonly canonical: { readonly v4: string; readonly v6: string };
  /** An nftables host: the file whose table inet twinwall it must end up with (Expected.nftables). */
  readonly nftables?: string;
  readonly hostname: string;
  /** The walls whose load must fail (Expected.failing). */
  readonly failing: readonly FailingWall[];
  /** Lines the user's own parts must print at the first boot (Expected.userEvidence). */
  readonly userEvidence?: readonly string[];
}

export interface BootOptions {
  readonly image: BootImage;
  readonly workDir: string;
  readonly accel: Accel;
  readonly timeoutMs: number;
  readonly say: (m: string) => void;
  /** vCPUs per guest (default 2). */
  readonly cpus?: number;
}

export function instanceIdOf(label: string): string {
  return `i-twinwall-boot-${label.replace(/[^A-Za-z0-9]+/g, '-')}`;
}

/** Boot `plan` twice on one overlay and judge both boots. */
export async function bootTwice(plan: BootPlan, o: BootOptions): Promise<BootRecord[]> {
  const slug = plan.label.replace(/[^A-Za-z0-9]+/g, '-');
  const disk = path.join(o.workDir, `${slug}.qcow2`);
  const seed = path.join(o.workDir, `${slug}.seed.iso`);
  const instanceId = instanceIdOf(plan.label);
  createOverlay(o.image, disk);
  createSeed(seed, plan.userData, { instanceId, hostname: plan.hostname });
  const expected: Expected = {
    v4: normaliseSave(plan.canonical.v4),
    v6: normaliseSave(plan.canonical.v6),
    ...(plan.nftables === undefined ? {} : { nftables: plan.nftables }),
    instanceId,
    failing: plan.failing,
    host: plan.hostname,
    ...(plan.userEvidence === undefined ? {} : { userEvidence: plan.userEvidence }),
  };
  const records: BootRecord[] = [];
  try {
    for (const boot of [1, 2] as const) {
      const serialLog = path.join(o.workDir, `${slug}.boot${boot}.serial.log`);
      const run = await runQemu({ image: o.image, disk, seed, serialLog, accel: o.accel, timeoutMs: o.timeoutMs, ...(o.cpus === undefined ? {} : { cpus: o.cpus }) });
      if (run.stderr.trim() !== '') fs.writeFileSync(`${serialLog}.qemu-stderr`, run.stderr);
      const judgement = judgeBoot(parseSerialLog(run.serial), expected, boot);
      if (run.outcome !== 'poweroff') {
        judgement.problems.unshift(
          `qemu ${run.outcome === 'timeout' ? `timed out after ${(o.timeoutMs / 1000).toFixed(0)} s and was killed` : run.outcome === 'kvm-error' ? 'hit a KVM emulation error and was killed' : `exited ${run.exitCode}`}${
            run.stderr.trim() === '' ? '' : `: ${run.stderr.trim().split('\n').slice(0, 3).join(' | ')}`
          }`,
        );
      }
      const f = judgement.facts;
      const window = f.firstBootWindow === undefined ? '' : `; first-boot window ${f.firstBootWindow.toFixed(2)} s (network up → rules live)`;
      const order =
        boot === 2 && f.firewallUnitActiveAt !== undefined && f.networkPreAt !== undefined
          ? `; firewall unit active at ${f.firewallUnitActiveAt.toFixed(2)} s, network-pre.target at ${f.networkPreAt.toFixed(2)} s`
          : '';
      const verdict = judgement.problems.length === 0 ? (plan.failing.length === 0 ? 'healthy' : `failed closed as it must (${plan.failing.join(', ')}: fallback)`) : `${judgement.problems.length} problem(s)`;
      o.say(`${plan.label} boot ${boot}: ${run.seconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(0)} s CPU (${o.accel}, ${o.cpus ?? 2} vCPU, host load ${os.loadavg()[0].toFixed(1)}), ${verdict}${window}${order}`);
      records.push({ boot, seconds: run.seconds, cpuSeconds: run.cpuSeconds, outcome: run.outcome, serialLog, judgement });
      if (run.outcome === 'timeout' || run.outcome === 'kvm-error') break; // the disk's state is unknown
    }
  } finally {
    fs.rmSync(disk, { force: true });
    fs.rmSync(seed, { force: true });
  }
  return records;
}

/** A readable failure: every problem of every boot, and where the serial logs are. */
export function describeProblems(label: string, records: readonly BootRecord[]): string {
  const lines: string[] = [];
  for (const r of records) {
    if (r.judgement.problems.length === 0) continue;
    lines.push(`${label}, boot ${r.boot} (serial log ${r.serialLog}):`);
    for (const p of r.judgement.problems) lines.push(`  - ${p}`);
  }
  return lines.join('\n');
}
