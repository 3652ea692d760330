/**
 * bootcmd run the way cloud-init runs it on a first boot, inside network namespaces the test
 * creates: cloud-init's own `shellify` turns the `bootcmd` list into the script, `/bin/sh` runs
 * it, and a stand-in `cloud-init-per` runs its command (first boot: no semaphore yet). Used by the
 * iptables (cloud-config.test.ts) and the nftables (nft-user-data.test.ts) first-boot tiers.
 *
 * An image without a tool, or with one that fails every load, is a copy of the script whose
 * absolute path to the tool (the loader runs nothing else by that name) is swapped for a path
 * that does not exist (`absent`) or for a stub that exits 1 (`failingStub`): `swapTool`.
 */
import { execFileSync, spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Prerequisite } from './tiers';

/** cloud-init's own Python modules, to turn bootcmd into the shell script cloud-init would run. */
export const cloudInitPython: Prerequisite = {
  name: 'cloud-init python modules',
  check: () => (spawnSync('/usr/bin/python3', ['-c', 'import yaml, cloudinit.util'], { stdio: 'pipe' }).status === 0 ? undefined : 'python3 cannot import cloudinit'),
};

export interface BootcmdLab {
  /** The lab's scratch folder (removed by `close`). */
  readonly dir: string;
  /** How many namespaces the lab has made (a unique suffix for the next one). */
  made(): number;
  /** A fresh namespace named after `tag` (deleted by `close`). */
  namespace(tag: string): string;
  /** Run the document's bootcmd in namespace `ns`, as cloud-init would. */
  runBootcmd(cloudConfig: string, ns: string): SpawnSyncReturns<string>;
  /** A path named like `tool` that does not exist: the image lacks the tool. */
  absent(tool: string): string;
  /** An executable named like `tool` that prints one line on stderr and exits 1, whatever it is given. */
  failingStub(tool: string): string;
  /** Delete every namespace and file the lab made. */
  close(): void;
}

/** `text` with every occurrence of the absolute path `tool` replaced by `by` (there must be some). */
export function swapTool(text: string, tool: string, by: string): string {
  const parts = text.split(tool);
  if (parts.length < 2) throw new Error(`the script never names ${tool}`);
  return parts.join(by);
}

/** A lab whose namespaces are named `<prefix><tag><pid>`. Call in beforeAll; `close` in afterAll. */
export function bootcmdLab(prefix: string): BootcmdLab {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twinwall-${prefix}-`));
  const namespaces: string[] = [];
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin', 'cloud-init-per'), '#!/bin/sh\nshift 2\nexec "$@"\n', { mode: 0o755 });
  return {
    dir,
    made: () => namespaces.length,
    namespace(tag) {
      const ns = `${prefix}${tag}${process.pid}`;
      execFileSync('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
      return ns;
    },
    runBootcmd(cloudConfig, ns) {
      const yamlFile = path.join(dir, `${ns}.yaml`);
      const script = path.join(dir, `${ns}.sh`);
      fs.writeFileSync(yamlFile, cloudConfig);
      execFileSync('/usr/bin/python3', [
        '-c',
        'import sys, yaml\nfrom cloudinit.util import shellify\nopen(sys.argv[2], "w").write(shellify(yaml.safe_load(open(sys.argv[1]))["bootcmd"]))',
        yamlFile,
        script,
      ]);
      return spawnSync('ip', ['netns', 'exec', ns, '/bin/sh', script], { encoding: 'utf8', env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` } });
    },
    absent(tool) {
      return path.join(dir, 'absent', path.basename(tool));
    },
    failingStub(tool) {
      const stub = path.join(dir, 'stub', path.basename(tool));
      fs.mkdirSync(path.dirname(stub), { recursive: true });
      fs.writeFileSync(stub, `#!/bin/sh\necho "${path.basename(tool)} (test stub): refuses every load" >&2\nexit 1\n`, { mode: 0o755 });
      return stub;
    },
    close() {
      for (const ns of namespaces) spawnSync('ip', ['netns', 'delete', ns]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
