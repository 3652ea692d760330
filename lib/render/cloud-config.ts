/**
 * The user-data that installs the host wall: a `#cloud-config` document (see docs/user-data.md
 * and DESIGN "User-data contract"). Pure: no I/O; the same tables always give the same bytes.
 *
 * - `write_files` puts the tables in /etc/iptables/rules.v4 and rules.v6 (the netfilter-persistent
 *   convention) and writes a systemd unit that loads both before the network at every later boot.
 * - `runcmd` enables (and starts) the unit: write_files cannot enable a unit, and `bootcmd`, the
 *   only earlier hook, runs before write_files, when the unit file does not exist yet.
 * - `bootcmd` loads the rules on the first boot of an instance, from its own copy of them, since
 *   write_files has not run yet. cloud-init's network stage has brought the network up by then:
 *   for those seconds only the security group protects the host.
 * - The document is gzip-compressed only when it does not fit EC2's 16,384 bytes plain.
 */
import { gzipSync } from 'zlib';
import { Document, Scalar, visit } from 'yaml';
import { TwinwallError, show } from '../errors';
import { checkName } from '../flow';

/** EC2 accepts at most 16 KiB of user data (before base64). */
export const USER_DATA_LIMIT_BYTES = 16384;

export const RULES_V4_PATH = '/etc/iptables/rules.v4';
export const RULES_V6_PATH = '/etc/iptables/rules.v6';
export const FIREWALL_UNIT = 'twinwall-firewall.service';
export const FIREWALL_UNIT_PATH = `/etc/systemd/system/${FIREWALL_UNIT}`;
export const IPTABLES_RESTORE = '/usr/sbin/iptables-restore';
export const IP6TABLES_RESTORE = '/usr/sbin/ip6tables-restore';
/** Where the address sets live when the host wall has any (ipset-persistent's convention). */
export const IPSETS_PATH = '/etc/iptables/ipsets';
export const IPSET = '/usr/sbin/ipset';

/** The rules files hold no secret, but nobody but root needs to read them. */
export const RULES_PERMISSIONS = '0640';
export const UNIT_PERMISSIONS = '0644';

/** cloud-init-per semaphore name of the first-boot load (one run per instance id). */
export const FIRST_BOOT_SEMAPHORE = 'twinwall_firewall_first_boot';

export interface UserDataOptions {
  /** The host's name, for the comment at the top and the boot-time messages. */
  readonly host?: string;
}

export interface UserData {
  /** The `#cloud-config` document, uncompressed. */
  readonly cloudConfig: string;
  /** What goes in `user_data_base64`: the document, gzip-compressed first when `gzipped`. */
  readonly base64: string;
  /** True when the plain document did not fit 16,384 bytes and was gzip-compressed. */
  readonly gzipped: boolean;
  /** Size of what EC2 receives (after gzip, before base64), in bytes; at most 16,384. */
  readonly bytes: number;
  /** Size of the plain document in bytes. */
  readonly plainBytes: number;
}

/**
 * The systemd unit that loads both tables at every boot after the first. Its [Unit] header is
 * netfilter-persistent's: `DefaultDependencies=no` (without it, the implicit After=sysinit.target
 * closes an ordering cycle with cloud-init.service, which is ordered before sysinit.target and
 * after the network, and systemd breaks it by dropping cloud-init's network stage), then after
 * the local file systems and kernel modules, before network-pre.target.
 *
 * No ExecStop: stopping the unit (at shutdown, say) must not open the host. `WantedBy=
 * multi-user.target` only makes the unit part of a normal boot; the ordering comes from
 * `Before=network-pre.target`, and with `DefaultDependencies=no` the wanting target adds no
 * ordering of its own (see docs/user-data.md for why not sysinit.target).
 */
export function renderFirewallUnit(options: { ipsets?: boolean } = {}): string {
  // The address sets first: the tables refer to them by name, and a table naming a missing set
  // does not load. `-exist` makes a second load (reload) refill the same sets.
  const sets = options.ipsets === true;
  return [
    '[Unit]',
    'Description=twinwall host firewall (loads /etc/iptables/rules.v4 and rules.v6)',
    'Documentation=man:iptables-restore(8)',
    'DefaultDependencies=no',
    'Wants=local-fs.target systemd-modules-load.service',
    'After=local-fs.target systemd-modules-load.service',
    'Wants=network-pre.target',
    'Before=network-pre.target shutdown.target',
    'Conflicts=shutdown.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    ...(sets ? [`ExecStart=${IPSET} -exist restore -file ${IPSETS_PATH}`] : []),
    `ExecStart=${IPTABLES_RESTORE} ${RULES_V4_PATH}`,
    `ExecStart=${IP6TABLES_RESTORE} ${RULES_V6_PATH}`,
    ...(sets ? [`ExecReload=${IPSET} -exist restore -file ${IPSETS_PATH}`] : []),
    `ExecReload=${IPTABLES_RESTORE} ${RULES_V4_PATH}`,
    `ExecReload=${IP6TABLES_RESTORE} ${RULES_V6_PATH}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** A here-document delimiter that is no line of `text`. */
function delimiter(base: string, text: string): string {
  const lines = new Set(text.split('\n'));
  let d = base;
  for (let i = 1; lines.has(d); i++) d = `${base}_${i}`;
  return d;
}

/**
 * The first-boot script (run by `sh -c` under `cloud-init-per instance`): it pipes its own copy
 * of each table into iptables-restore / ip6tables-restore, each load atomic on its own. A failure
 * is loud (a message on the console and in /var/log/cloud-init-output.log, and a non-zero exit
 * cloud-init reports for bootcmd) but does not lock the host: see docs/user-data.md.
 */
export function renderFirstBootScript(input: { v4: string; v6: string; ipsets?: string }, host?: string): string {
  // The host name lands inside a double-quoted shell string, the tables inside here-documents:
  // a name with "$(…)" or a table whose last line runs into the delimiter would run commands.
  if (host !== undefined) checkName(host, 'The host name');
  const tables = { v4: checkTable(input?.v4, 'IPv4'), v6: checkTable(input?.v6, 'IPv6'), ...(input?.ipsets === undefined ? {} : { ipsets: checkTable(input.ipsets, 'ipset') }) };
  const who = host === undefined ? 'twinwall' : `twinwall (${host})`;
  const v4 = delimiter('TWINWALL_RULES_V4', tables.v4);
  const v6 = delimiter('TWINWALL_RULES_V6', tables.v6);
  const sets = tables.ipsets === undefined ? [] : [`${IPSET} -exist restore <<'${delimiter('TWINWALL_IPSETS', tables.ipsets)}' || failed="$failed ipsets"`, tables.ipsets + delimiter('TWINWALL_IPSETS', tables.ipsets)];
  return [
    '# First boot only: write_files has not run yet, so the rules travel here too.',
    'failed=""',
    ...sets,
    `${IPTABLES_RESTORE} <<'${v4}' || failed="$failed IPv4"`,
    tables.v4 + v4,
    `${IP6TABLES_RESTORE} <<'${v6}' || failed="$failed IPv6"`,
    tables.v6 + v6,
    'if [ -n "$failed" ]; then',
    `  echo "${who}: FAILED to load the host firewall for:$failed. Until it loads, only the security group protects this host. See /var/log/cloud-init-output.log." >&2`,
    '  exit 1',
    'fi',
    `echo "${who}: host firewall loaded (first boot)"`,
    '',
  ].join('\n');
}

/** A table (or ipset script) as iptables-restore text: a string, no CR or NUL, ending in a newline. */
function checkTable(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TwinwallError('OPTION_INVALID', {
      value,
      problem: `the ${what} table ${show(value)} is not iptables-restore text.`,
      fix: 'pass the output of renderIptables(policy): { v4, v6 }.',
    });
  }
  if (value.includes('\r') || value.includes('\0')) {
    throw new TwinwallError('OPTION_INVALID', {
      value: what,
      problem: `the ${what} table contains a carriage return or NUL byte, which iptables-restore files never hold.`,
      fix: 'pass the output of renderIptables(policy) unchanged (Unix line ends).',
    });
  }
  return value.endsWith('\n') ? value : `${value}\n`;
}

/** Build the `#cloud-config` text (uncompressed). */
export function renderCloudConfig(tables: { v4: string; v6: string; ipsets?: string }, options: UserDataOptions = {}): string {
  if (options.host !== undefined) checkName(options.host, 'The host name');
  const v4 = checkTable(tables?.v4, 'IPv4');
  const v6 = checkTable(tables?.v6, 'IPv6');
  const ipsets = tables?.ipsets === undefined ? undefined : checkTable(tables.ipsets, 'ipset');
  const doc = new Document(
    {
      bootcmd: [['cloud-init-per', 'instance', FIRST_BOOT_SEMAPHORE, '/bin/sh', '-c', renderFirstBootScript({ v4, v6, ...(ipsets === undefined ? {} : { ipsets }) }, options.host)]],
      write_files: [
        { path: RULES_V4_PATH, owner: 'root:root', permissions: RULES_PERMISSIONS, content: v4 },
        { path: RULES_V6_PATH, owner: 'root:root', permissions: RULES_PERMISSIONS, content: v6 },
        ...(ipsets === undefined ? [] : [{ path: IPSETS_PATH, owner: 'root:root', permissions: RULES_PERMISSIONS, content: ipsets }]),
        { path: FIREWALL_UNIT_PATH, owner: 'root:root', permissions: UNIT_PERMISSIONS, content: renderFirewallUnit({ ipsets: ipsets !== undefined }) },
      ],
      runcmd: [['systemctl', 'enable', '--now', FIREWALL_UNIT]],
    },
    // cloud-init reads YAML 1.1 (PyYAML): quote what 1.1 would read as numbers or booleans.
    { version: '1.1' },
  );
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && node.value.includes('\n')) node.type = Scalar.BLOCK_LITERAL;
    },
  });
  const header = [
    '#cloud-config',
    `# twinwall host firewall${options.host === undefined ? '' : ` for ${options.host}`}: generated at synth time from the host policy; change the policy, not this file.`,
    '# bootcmd loads the rules at first boot (it runs before write_files, so it carries its own copy);',
    `# ${FIREWALL_UNIT} loads ${RULES_V4_PATH} and ${RULES_V6_PATH} before the network at every later boot.`,
  ].join('\n');
  return `${header}\n${doc.toString({ lineWidth: 0, indentSeq: true })}`;
}

/**
 * gzip with fixed settings (level 9), so the same text always gives the same bytes. zlib writes
 * mtime 0; the OS byte is pinned to 3 (Unix) so the output does not depend on the build platform.
 */
export function deterministicGzip(data: Buffer): Buffer {
  const out = gzipSync(data, { level: 9 });
  if (out.readUInt32LE(4) !== 0) throw new Error('twinwall bug: gzip header carries a modification time');
  out[9] = 3;
  return out;
}

/**
 * Render the user-data for a host wall. Throws USER_DATA_TOO_LARGE when even the gzip-compressed
 * document exceeds 16,384 bytes.
 */
export function renderUserData(tables: { v4: string; v6: string; ipsets?: string }, options: UserDataOptions = {}): UserData {
  const cloudConfig = renderCloudConfig(tables, options);
  const plain = Buffer.from(cloudConfig, 'utf8');
  if (plain.length <= USER_DATA_LIMIT_BYTES) {
    return Object.freeze({ cloudConfig, base64: plain.toString('base64'), gzipped: false, bytes: plain.length, plainBytes: plain.length });
  }
  const gz = deterministicGzip(plain);
  if (gz.length > USER_DATA_LIMIT_BYTES) {
    throw new TwinwallError('USER_DATA_TOO_LARGE', {
      value: { plainBytes: plain.length, gzippedBytes: gz.length },
      path: options.host === undefined ? [] : [options.host],
      problem: `the user-data is ${plain.length} bytes plain and ${gz.length} bytes gzip-compressed, but EC2 accepts at most ${USER_DATA_LIMIT_BYTES} bytes.`,
      fix: 'shrink the policy (merge peers into fewer, wider CIDRs; drop roles the host does not play) or split the host; the rules appear twice in the user-data (bootcmd and write_files).',
    });
  }
  return Object.freeze({ cloudConfig, base64: gz.toString('base64'), gzipped: true, bytes: gz.length, plainBytes: plain.length });
}
