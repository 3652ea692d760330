/**
 * Kernel LOG lines from a network namespace other than the first reach the kernel log only while
 * net.netfilter.nf_log_all_netns is 1. Tests that read them switch it on for as short as they
 * can and put back what they found. Jest runs test files in parallel processes, so the switch is
 * serialised by a lock directory: without it, one test could read another's "1" as the value to
 * restore and leave the machine's setting changed.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Prerequisite } from './tiers';

export const NF_LOG_ALL_NETNS = '/proc/sys/net/netfilter/nf_log_all_netns';
const LOCK = path.join(os.tmpdir(), 'twinwall-nf-log-all-netns.lock');

export const nfLog: Prerequisite = {
  name: 'nf_log_all_netns',
  check: () => (fs.existsSync(NF_LOG_ALL_NETNS) ? undefined : `${NF_LOG_ALL_NETNS} does not exist (no netfilter logging in namespaces)`),
};

export const dmesgReadable: Prerequisite = {
  name: 'dmesg',
  check: () => {
    try {
      execFileSync('dmesg', [], { stdio: 'pipe', maxBuffer: 64 << 20 });
      return undefined;
    } catch (e) {
      return `dmesg cannot read the kernel log (${(e as Error).message.split('\n')[0]})`;
    }
  },
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquire(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8'));
    } catch {
      // the owner is between mkdir and writing its pid, or just released
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) fs.rmSync(LOCK, { recursive: true, force: true }); // stale
    if (Date.now() > deadline) throw new Error(`${LOCK} is held by process ${owner} for more than ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the setting was before, and what it is after it was put back (read while still locked). */
export interface NfLogRestore {
  readonly before: string;
  readonly after: string;
}

/** Run `fn` with nf_log_all_netns = 1, serialised with every other caller; restores the setting. */
export async function withNfLogAllNetns<T>(fn: () => Promise<T>): Promise<{ result: T; restore: NfLogRestore }> {
  await acquire(120_000);
  try {
    const before = fs.readFileSync(NF_LOG_ALL_NETNS, 'utf8').trim();
    fs.writeFileSync(NF_LOG_ALL_NETNS, '1');
    let result: T;
    try {
      result = await fn();
    } finally {
      fs.writeFileSync(NF_LOG_ALL_NETNS, before);
    }
    return { result, restore: { before, after: fs.readFileSync(NF_LOG_ALL_NETNS, 'utf8').trim() } };
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}
