/**
 * The boot tier's test images: Debian 12 (bookworm) and Debian 13 (trixie), built with debootstrap
 * from Debian packages, from the same mirror the machine's apt uses (its bookworm source: the
 * archive serves every release). Kernel, systemd, cloud-init, iptables, nftables, a generated
 * locale (cloud-init's locale module fails without one) and a diagnostic unit that reports on the
 * serial console and powers off (guest/twinwall-boot-report*). Nothing of twinwall is in the
 * image: the host wall arrives only through the user-data, as on EC2.
 *
 * The image is cached outside the repo, in `<cache>/<sha256 of the recipe>/`, and rebuilt only when
 * the recipe (packages, mirror, files, kernel command line, build steps version) changes. A build
 * happens in a temporary sibling folder that is renamed into place when complete, so an
 * interrupted build never leaves a half image that looks ready.
 */
import { execFileSync, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** Bump when the build steps below change in a way the recipe fields do not show. */
const BUILD_STEPS_VERSION = 5;

/** The Debian releases the boot tier boots. */
export const BOOT_SUITES = ['bookworm', 'trixie'] as const;
export type BootSuite = (typeof BOOT_SUITES)[number];

/** "Debian 12 (bookworm)". */
export function suiteLabel(suite: BootSuite): string {
  return suite === 'bookworm' ? 'Debian 12 (bookworm)' : 'Debian 13 (trixie)';
}

/**
 * A kernel module deleted from every test image, so a negative fixture can need a module the
 * image lacks (as on a custom or trimmed kernel). twinwall's own tables never use it.
 */
export const MISSING_MODULE = 'xt_recent';

export const DEFAULT_CACHE_ROOT = process.env.TWINWALL_BOOT_CACHE ?? '/var/cache/twinwall-boot';

const GUEST_DIR = path.join(__dirname, 'guest');

export interface ImageFile {
  readonly content: string;
  readonly mode: number;
}

export interface ImageRecipe {
  readonly buildStepsVersion: number;
  readonly suite: string;
  readonly mirror: string;
  readonly variant: string;
  /** debootstrap --include (it resolves Depends, not virtual packages: name those too). */
  readonly packages: readonly string[];
  readonly locale: string;
  /** Files written into the root file system (absolute paths inside the image). */
  readonly files: Readonly<Record<string, ImageFile>>;
  /** Symlinks created in the image: link path → target (enable / mask units). */
  readonly symlinks: Readonly<Record<string, string>>;
  /** Kernel modules deleted from the image (then depmod). */
  readonly removeModules: readonly string[];
  readonly kernelCmdline: string;
  readonly diskSize: string;
}

export interface BootImage {
  readonly dir: string;
  readonly disk: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly recipe: ImageRecipe;
  readonly hash: string;
  /** True when this call built it, false when it came from the cache. */
  readonly built: boolean;
  readonly buildSeconds?: number;
}

interface SourceEntry {
  readonly uris: string[];
  readonly suites: string[];
  readonly components: string[];
  readonly types: string[];
}

/** Parse one-line (`deb [opts] URI suite comps…`) and deb822 (`Types:`/`URIs:` …) apt sources. */
export function parseAptSources(text: string, deb822: boolean): SourceEntry[] {
  const entries: SourceEntry[] = [];
  if (!deb822) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
      if (m) entries.push({ types: [m[1]], uris: [m[2]], suites: [m[3]], components: m[4].split(/\s+/).filter(Boolean) });
    }
    return entries;
  }
  for (const para of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    for (const raw of para.split('\n')) {
      if (raw.startsWith('#')) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) fields[m[1].toLowerCase()] = m[2];
    }
    if (fields.enabled === 'no' || fields.uris === undefined) continue;
    const list = (k: string): string[] => (fields[k] ?? '').split(/\s+/).filter(Boolean);
    entries.push({ types: list('types'), uris: list('uris'), suites: list('suites'), components: list('components') });
  }
  return entries;
}

/**
 * The Debian archive the machine's apt uses for `suite` main (not -security, not -updates), read
 * from /etc/apt/sources.list and /etc/apt/sources.list.d/*.
 */
export function aptMirror(suite: string, etc = '/etc/apt'): string {
  const files: [string, boolean][] = [];
  if (fs.existsSync(path.join(etc, 'sources.list'))) files.push([path.join(etc, 'sources.list'), false]);
  const dir = path.join(etc, 'sources.list.d');
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).sort()) {
      if (f.endsWith('.list')) files.push([path.join(dir, f), false]);
      else if (f.endsWith('.sources')) files.push([path.join(dir, f), true]);
    }
  }
  for (const [file, deb822] of files) {
    for (const e of parseAptSources(fs.readFileSync(file, 'utf8'), deb822)) {
      if (e.types.includes('deb') && e.suites.includes(suite) && e.components.includes('main')) return e.uris[0].replace(/\/+$/, '');
    }
  }
  throw new Error(`no apt source for ${suite} main in ${etc}/sources.list or ${etc}/sources.list.d/: the boot tier builds its image from the machine's Debian mirror`);
}

function guestFile(name: string): string {
  return fs.readFileSync(path.join(GUEST_DIR, name), 'utf8');
}

/**
 * The image recipe of one release. Everything that decides the image's content is in here (and
 * so in its hash). Both releases come from the archive the machine's apt uses for bookworm.
 */
export function imageRecipe(suite: BootSuite = 'bookworm', mirror = aptMirror('bookworm')): ImageRecipe {
  const locale = 'en_US.UTF-8';
  return {
    buildStepsVersion: BUILD_STEPS_VERSION,
    suite,
    mirror,
    variant: 'minbase',
    packages: [
      'linux-image-amd64',
      'systemd-sysv',
      'udev',
      'kmod',
      'cloud-init',
      'python3-cffi-backend', // provides python3-cffi-backend-api-*, which debootstrap cannot resolve
      'iptables',
      // The nft binary for hosts with hostFirewall 'nftables' (and the report's `nft list ruleset`).
      // Debian installs it on every standard system (Priority: important), but minbase holds only
      // Priority: required, so it is named here like iptables.
      'nftables',
      'locales',
      'ifupdown',
      'isc-dhcp-client',
      'netbase',
      // A real server image has sshd (the sample server's SSH role needs it), and without it
      // cloud-init's ssh and set_passwords modules log warnings at every first boot.
      'openssh-server',
      // trixie's minbase lacks it, and cloud-init's resizefs module then errors (DESIGN "Machine facts").
      ...(suite === 'trixie' ? ['e2fsprogs'] : []),
    ],
    locale,
    files: {
      '/etc/fstab': { content: '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n', mode: 0o644 },
      '/etc/hostname': { content: 'twinwall-boot\n', mode: 0o644 },
      '/etc/hosts': { content: '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n', mode: 0o644 },
      // A small initramfs (the stock MODULES=most one is ~36 MB, and unpacking it under software
      // emulation costs many seconds): just what finds and mounts an ext4 root on virtio.
      '/etc/initramfs-tools/conf.d/twinwall-boot.conf': { content: 'MODULES=list\nCOMPRESS=zstd\n', mode: 0o644 },
      '/etc/initramfs-tools/modules': { content: 'virtio_pci\nvirtio_blk\next4\n', mode: 0o644 },
      '/etc/locale.gen': { content: `${locale} UTF-8\n`, mode: 0o644 },
      '/etc/default/locale': { content: `LANG=${locale}\n`, mode: 0o644 },
      '/etc/network/interfaces': { content: 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n', mode: 0o644 },
      // Only the NoCloud seed: no probing for EC2's metadata service (the guest has no NIC anyway).
      // The host keys debootstrap's openssh-server made are kept: generating RSA keys again at
      // every first boot costs seconds under software emulation and proves nothing here.
      '/etc/cloud/cloud.cfg.d/90-twinwall-boot.cfg': { content: 'datasource_list: [ NoCloud, None ]\nssh_deletekeys: false\n', mode: 0o644 },
      '/usr/local/sbin/twinwall-boot-report': { content: guestFile('twinwall-boot-report'), mode: 0o755 },
      '/etc/systemd/system/twinwall-boot-report.service': { content: guestFile('twinwall-boot-report.service'), mode: 0o644 },
    },
    symlinks: {
      '/etc/systemd/system/multi-user.target.wants/twinwall-boot-report.service': '/etc/systemd/system/twinwall-boot-report.service',
      // The serial console carries the report; no login prompt in the middle of it.
      '/etc/systemd/system/serial-getty@ttyS0.service': '/dev/null',
    },
    removeModules: [MISSING_MODULE],
    // systemd.show_status=0: trixie's systemd prints status lines on the console otherwise,
    // which interleave with the report (DESIGN "Machine facts"); harmless on bookworm.
    kernelCmdline: 'root=/dev/vda rw console=ttyS0 quiet loglevel=3 panic=-1 net.ifnames=0 systemd.show_status=0',
    diskSize: '3G',
  };
}

export function recipeHash(recipe: ImageRecipe): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex');
}

function run(cmd: string, args: readonly string[], log: string, env?: NodeJS.ProcessEnv): void {
  fs.appendFileSync(log, `\n$ ${cmd} ${args.join(' ')}\n`);
  const fd = fs.openSync(log, 'a');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], env: env ?? process.env });
    if (r.error) throw r.error;
    if (r.status !== 0) {
      const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-25).join('\n');
      throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited ${r.status ?? r.signal}; see ${log}. Last lines:\n${tail}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Mount points at or under `dir` (deepest first), from /proc/mounts. */
function mountsUnder(dir: string): string[] {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => m !== undefined && (m === real || m.startsWith(`${real}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Remove a build folder, refusing to recurse into anything still mounted (debootstrap binds /proc, /sys …). */
function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m]);
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`refusing to delete ${dir}: still mounted: ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Run `fn` with /proc, /sys and /dev bound into `rootfs` (update-initramfs needs them), always unbinding. */
function withChrootMounts(rootfs: string, fn: () => void): void {
  const bound: string[] = [];
  try {
    for (const m of ['proc', 'sys', 'dev']) {
      const at = path.join(rootfs, m);
      execFileSync('mount', ['--bind', `/${m}`, at], { stdio: 'pipe' });
      bound.push(at);
    }
    fn();
  } finally {
    for (const at of bound.reverse()) spawnSync('umount', ['-l', at]);
  }
}

/** Every file under `dir` whose name passes `keep` (no symlinks followed). */
function findFiles(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findFiles(at, keep));
    else if (entry.isFile() && keep(entry.name)) out.push(at);
  }
  return out;
}

function newest(dir: string, prefix: string): string {
  const found = fs.readdirSync(dir).filter((f) => f.startsWith(prefix)).sort();
  if (found.length === 0) throw new Error(`no ${prefix}* in ${dir}: did linux-image-amd64 install?`);
  return path.join(dir, found[found.length - 1]);
}

/** The cached image for `recipe`, building it first when the cache does not have it. */
export function ensureImage(recipe: ImageRecipe = imageRecipe(), cacheRoot = DEFAULT_CACHE_ROOT, say: (m: string) => void = () => undefined): BootImage {
  const hash = recipeHash(recipe);
  const dir = path.join(cacheRoot, hash);
  const image = (built: boolean, buildSeconds?: number): BootImage => ({
    dir,
    disk: path.join(dir, 'disk.raw'),
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    recipe,
    hash,
    built,
    ...(buildSeconds === undefined ? {} : { buildSeconds }),
  });
  if (fs.existsSync(path.join(dir, 'recipe.json'))) return image(false);

  const started = Date.now();
  fs.mkdirSync(cacheRoot, { recursive: true });
  const work = path.join(cacheRoot, `${hash}.build-${process.pid}`);
  removeTree(work);
  fs.mkdirSync(work);
  const log = path.join(work, 'build.log');
  const rootfs = path.join(work, 'rootfs');
  const debs = path.join(cacheRoot, 'debs'); // downloaded .debs, reused by later builds
  fs.mkdirSync(debs, { recursive: true });
  try {
    say(`building the boot image ${hash.slice(0, 12)} with debootstrap from ${recipe.mirror} (log: ${log})`);
    run(
      'debootstrap',
      [`--variant=${recipe.variant}`, `--include=${recipe.packages.join(',')}`, `--cache-dir=${debs}`, recipe.suite, rootfs, recipe.mirror],
      log,
      { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    );
    for (const [file, f] of Object.entries(recipe.files)) {
      const target = path.join(rootfs, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, f.content);
      fs.chmodSync(target, f.mode);
    }
    for (const [link, target] of Object.entries(recipe.symlinks)) {
      const at = path.join(rootfs, link);
      fs.mkdirSync(path.dirname(at), { recursive: true });
      fs.rmSync(at, { force: true });
      fs.symlinkSync(target, at);
    }
    for (const mod of recipe.removeModules) {
      for (const file of findFiles(path.join(rootfs, 'usr', 'lib', 'modules'), (f) => f === `${mod}.ko` || f.startsWith(`${mod}.ko.`))) fs.rmSync(file);
    }
    if (recipe.removeModules.length > 0) {
      for (const version of fs.readdirSync(path.join(rootfs, 'usr', 'lib', 'modules'))) run('chroot', [rootfs, 'depmod', '-a', version], log);
    }
    run('chroot', [rootfs, 'locale-gen'], log);
    withChrootMounts(rootfs, () => run('chroot', [rootfs, 'update-initramfs', '-u', '-k', 'all'], log));
    // What the guest never needs: package lists and downloaded archives.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const f of fs.readdirSync(path.join(rootfs, d))) {
        if (f.endsWith('.deb') || f.endsWith('_Packages') || f.endsWith('Release') || f.endsWith('Release.gpg')) fs.rmSync(path.join(rootfs, d, f), { force: true });
      }
    }
    fs.copyFileSync(newest(path.join(rootfs, 'boot'), 'vmlinuz-'), path.join(work, 'vmlinuz'));
    fs.copyFileSync(newest(path.join(rootfs, 'boot'), 'initrd.img-'), path.join(work, 'initrd.img'));
    // ext4 filled from the folder (mkfs -d): no loop device, no mount.
    run('mkfs.ext4', ['-q', '-F', '-L', 'twroot', '-d', rootfs, path.join(work, 'disk.raw'), recipe.diskSize], log);
    fs.chmodSync(path.join(work, 'disk.raw'), 0o444); // the base of every overlay: never written
    removeTree(rootfs);
    const buildSeconds = (Date.now() - started) / 1000;
    fs.writeFileSync(path.join(work, 'recipe.json'), `${JSON.stringify({ hash, buildSeconds, recipe }, null, 2)}\n`);
    removeTree(dir); // an incomplete folder of the same hash (no recipe.json) from an older run
    fs.renameSync(work, dir);
    return image(true, buildSeconds);
  } catch (e) {
    try {
      removeTree(rootfs);
    } catch {
      /* keep the original error */
    }
    throw e;
  }
}

/** Paths the build needs; used as the tier's prerequisites. */
export const IMAGE_TOOLS = ['debootstrap', 'mkfs.ext4', 'chroot'] as const;
