/**
 * Boot the test image under qemu: direct kernel boot (kernel and initrd taken from the image),
 * no NIC, the serial console written to a file, a copy-on-write overlay over the cached image and
 * a NoCloud seed (an ISO 9660 volume labelled `cidata` holding user-data and meta-data).
 *
 * Software emulation (TCG) by default. KVM is used only when a probe shows it can run this
 * kernel: the /dev/kvm of some nested hosts cannot, and qemu then prints a KVM emulation error
 * and sits paused forever. Every qemu started here is killed by its process id on such an error,
 * on timeout, and when this process exits.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BootImage } from './image';

export type Accel = 'tcg' | 'kvm';

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}
process.on('exit', killAll);

/** Kill every qemu this module started and that still runs (tests call it in afterAll). */
export function killAllQemu(): void {
  killAll();
}

/** The lines qemu prints when KVM cannot emulate an instruction; it then pauses the guest. */
const KVM_ERROR = /KVM internal error|emulation failure|kvm run failed|KVM: entry failed/i;

export interface QemuRun {
  /** 'poweroff': the guest powered off (qemu exited 0). */
  readonly outcome: 'poweroff' | 'timeout' | 'kvm-error' | 'exit-error';
  readonly seconds: number;
  /**
   * CPU time qemu used (user + system, sampled from /proc every second, so up to a second
   * short): what the boot costs, whatever else shares the machine.
   */
  readonly cpuSeconds: number;
  readonly serial: string;
  readonly stderr: string;
  readonly exitCode: number | null;
}

export interface QemuOptions {
  readonly image: BootImage;
  /** Disk the guest boots from (an overlay over image.disk); none for the KVM probe. */
  readonly disk?: string;
  readonly seed?: string;
  readonly serialLog: string;
  readonly accel: Accel;
  readonly timeoutMs: number;
  readonly cpus?: number;
  readonly memoryMb?: number;
  /** Replaces the image's kernel command line (the KVM probe uses this). */
  readonly cmdline?: string;
}

export function qemuArgs(o: QemuOptions): string[] {
  const args = [
    '-name', 'twinwall-boot',
    '-nodefaults',
    '-display', 'none',
    '-no-reboot',
    '-nic', 'none',
    '-machine', 'pc',
    '-m', String(o.memoryMb ?? 1024),
    '-smp', String(o.cpus ?? 2),
    '-kernel', o.image.kernel,
    '-initrd', o.image.initrd,
    '-append', o.cmdline ?? o.image.recipe.kernelCmdline,
    '-serial', `file:${o.serialLog}`,
    '-monitor', 'none',
  ];
  if (o.disk !== undefined) args.push('-drive', `file=${o.disk},if=virtio,format=${o.disk.endsWith('.qcow2') ? 'qcow2' : 'raw'},cache=unsafe`);
  if (o.seed !== undefined) args.push('-drive', `file=${o.seed},if=virtio,format=raw,readonly=on`);
  if (o.accel === 'kvm') args.push('-accel', 'kvm', '-cpu', 'host');
  else args.push('-accel', 'tcg,thread=multi', '-cpu', 'max');
  return args;
}

/** Run qemu until the guest powers off, a KVM error shows, or the timeout: always reaped. */
export function runQemu(o: QemuOptions): Promise<QemuRun> {
  fs.rmSync(o.serialLog, { force: true });
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', qemuArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stderr = '';
    let verdict: QemuRun['outcome'] | undefined;
    const kill = (why: QemuRun['outcome']): void => {
      if (verdict === undefined) verdict = why;
      if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), o.timeoutMs);
    let cpuSeconds = 0;
    const ticks = 100; // USER_HZ on Linux
    const sample = (): void => {
      try {
        // /proc/PID/stat: fields after the ")" of the command name; utime and stime are 14 and 15.
        const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpuSeconds = (Number(f[11]) + Number(f[12])) / ticks;
      } catch {
        /* gone */
      }
    };
    const sampler = setInterval(sample, 1000);
    const onOutput = (chunk: Buffer): void => {
      stderr += chunk.toString();
      if (KVM_ERROR.test(stderr)) kill('kvm-error');
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('error', (e) => {
      clearTimeout(timer);
      clearInterval(sampler);
      live.delete(child);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearInterval(sampler);
      live.delete(child);
      const serial = fs.existsSync(o.serialLog) ? fs.readFileSync(o.serialLog, 'latin1') : '';
      resolve({
        outcome: verdict ?? (code === 0 ? 'poweroff' : 'exit-error'),
        seconds: (Date.now() - started) / 1000,
        cpuSeconds,
        serial,
        stderr,
        exitCode: code,
      });
    });
  });
}

/**
 * Can KVM run this image's kernel? Boots it with `rdinit=/bin/true`: the initramfs's first
 * process exits at once, the kernel panics ("Attempted to kill init") and, with panic=-1 and
 * -no-reboot, qemu exits. A KVM that cannot run the kernel shows its emulation error first (and
 * the guest pauses; we kill it). Anything else than reaching the panic counts as "no".
 */
export async function probeKvm(image: BootImage, workDir: string): Promise<{ usable: boolean; why: string; seconds: number }> {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { usable: false, why: '/dev/kvm is missing or not accessible', seconds: 0 };
  }
  const run = await runQemu({
    image,
    serialLog: path.join(workDir, 'kvm-probe.serial.log'),
    accel: 'kvm',
    timeoutMs: 30000,
    cpus: 1,
    memoryMb: 512,
    cmdline: 'console=ttyS0 rdinit=/bin/true panic=-1 loglevel=4',
  });
  if (run.outcome === 'kvm-error') return { usable: false, why: `KVM emulation error (${firstLine(run.stderr, KVM_ERROR)})`, seconds: run.seconds };
  if (/Attempted to kill init/.test(run.serial)) return { usable: true, why: 'the kernel ran to its init under KVM', seconds: run.seconds };
  return { usable: false, why: `probe ended with ${run.outcome}${run.stderr.trim() === '' ? '' : `: ${run.stderr.trim().split('\n')[0]}`}`, seconds: run.seconds };
}

function firstLine(text: string, re: RegExp): string {
  return text.split('\n').find((l) => re.test(l))?.trim() ?? text.trim().split('\n')[0];
}

/** A qcow2 overlay over the (read-only) image: each host boots on its own copy-on-write disk. */
export function createOverlay(image: BootImage, file: string): void {
  fs.rmSync(file, { force: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image.disk, file], { stdio: 'pipe' });
}

/**
 * A NoCloud seed: an ISO 9660 volume labelled `cidata` with `user-data` (the bytes exactly as
 * EC2 would hand them over: gzip and all) and `meta-data` (a fixed instance id).
 */
export function createSeed(file: string, userData: Buffer, meta: { instanceId: string; hostname: string }): void {
  const dir = `${file}.d`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'user-data'), userData);
  fs.writeFileSync(path.join(dir, 'meta-data'), `instance-id: ${meta.instanceId}\nlocal-hostname: ${meta.hostname}\n`);
  fs.rmSync(file, { force: true });
  execFileSync('genisoimage', ['-quiet', '-output', file, '-volid', 'cidata', '-joliet', '-rock', path.join(dir, 'user-data'), path.join(dir, 'meta-data')], { stdio: 'pipe' });
  fs.rmSync(dir, { recursive: true, force: true });
}
