/**
 * Test tiers with prerequisites (a terraform binary, root, network namespaces, cloud-init …).
 * When a prerequisite is missing the tier is skipped and says why; under CI=true a missing
 * prerequisite is a failure instead, so CI always runs every tier.
 */
import { execFileSync } from 'child_process';

export interface Prerequisite {
  readonly name: string;
  /** Returns undefined when satisfied, or why not. */
  readonly check: () => string | undefined;
}

export function onPath(command: string): Prerequisite {
  return {
    name: command,
    check: () => {
      try {
        execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'pipe' });
        return undefined;
      } catch {
        return `\`${command}\` is not on PATH`;
      }
    },
  };
}

/**
 * A tier that is too slow for every `npm test`: it runs only under CI=true or when `variable`
 * is "1" (e.g. from its own npm script). Put it first: without the opt-in the tier is skipped
 * with `why` before any other prerequisite is probed, and under CI=true it is always opted in,
 * so a missing prerequisite after it still fails CI.
 */
export function optIn(variable: string, why: string): Prerequisite {
  return {
    name: `${variable}=1 or CI=true`,
    check: () => (process.env.CI === 'true' || process.env[variable] === '1' ? undefined : why),
  };
}

/** The npm registry answers (`npm ping`, bounded): the consumer tier installs packages from it. */
export const npmRegistry: Prerequisite = {
  name: 'the npm registry',
  check: () => {
    try {
      execFileSync('npm', ['ping', '--no-fund', '--no-audit'], { stdio: 'pipe', timeout: 30_000 });
      return undefined;
    } catch (e) {
      return `the npm registry is not reachable (\`npm ping\`: ${(e as Error).message.split('\n')[0]})`;
    }
  },
};

export const root: Prerequisite = {
  name: 'root',
  check: () => (process.getuid && process.getuid() === 0 ? undefined : 'not running as root'),
};

/**
 * A prerequisite met when `argv` (with `input`) succeeds inside a throwaway network namespace:
 * a tool together with the kernel feature it needs.
 */
function inThrowawayNamespace(name: string, tag: string, argv: readonly string[], input: string | undefined, what: string): Prerequisite {
  return {
    name,
    check: () => {
      const ns = `${tag}${process.pid}`;
      try {
        execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
        execFileSync('ip', ['netns', 'exec', ns, ...argv], { input, stdio: 'pipe' });
        return undefined;
      } catch (e) {
        return `cannot ${what} (${(e as Error).message.split('\n')[0]})`;
      } finally {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'pipe' });
        } catch {
          // not created
        }
      }
    },
  };
}

/** The ipset tool and the kernel's ip_set module (tried in a throwaway network namespace). */
export const ipset = inThrowawayNamespace('ipset', 'twipset', ['ipset', 'create', 'probe', 'hash:net'], undefined, 'create an ipset hash:net set');

/** The nft tool and the kernel's nf_tables with an inet table (tried in a throwaway network namespace). */
export const nft = inThrowawayNamespace(
  'nft',
  'twnft',
  ['nft', '-f', '-'],
  'table inet probe {\n\tchain input { type filter hook input priority filter; policy accept; }\n}\n',
  'load an nftables inet table',
);

export const netns: Prerequisite = {
  name: 'network namespaces',
  check: () => {
    const name = `twprobe${process.pid}`;
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'pipe' });
      return undefined;
    } catch (e) {
      return `cannot create a network namespace (${(e as Error).message.split('\n')[0]})`;
    }
  },
};

/**
 * `describe` for a tier: runs the block when every prerequisite holds; otherwise prints why and
 * skips it — or, under CI=true, fails.
 */
export function describeTier(tier: string, prerequisites: readonly Prerequisite[], body: () => void): void {
  const missing: string[] = [];
  for (const p of prerequisites) {
    const why = p.check();
    if (why !== undefined) {
      missing.push(why);
      break; // later prerequisites usually depend on earlier ones (netns needs root and ip)
    }
  }
  if (missing.length === 0) {
    describe(tier, body);
    return;
  }
  const reason = `${tier} tier skipped: ${missing.join('; ')}`;
  if (process.env.CI === 'true') {
    describe(tier, () => {
      it('has its prerequisites (CI=true turns a skip into a failure)', () => {
        throw new Error(`${reason}. CI must run every tier: install the prerequisite in .ci/run.`);
      });
    });
    return;
  }
  // eslint-disable-next-line no-console
  console.warn(reason);
  describe.skip(tier, body);
}
