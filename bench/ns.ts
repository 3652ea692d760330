/**
 * Network namespaces for the kernel benchmarks: created with unique names, always deleted. No
 * traffic leaves them: the packet benchmark's peer namespace owns every address it is sent to.
 */
import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';

export class BenchNamespace {
  public static create(): BenchNamespace {
    const name = `twbench${randomBytes(3).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', name]);
    return new BenchNamespace(name);
  }

  public readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  public exec(argv: readonly string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  public destroy(): void {
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  }
}

/** Milliseconds `fn` takes. */
export function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
