/**
 * The user-data that installs the host wall: a `#cloud-config` document (see docs/user-data.md
 * and DESIGN "User-data contract"). Pure: no I/O; the same tables always give the same bytes.
 *
 * - `write_files` puts the tables in /etc/iptables/rules.v4 and rules.v6 (the netfilter-persistent
 *   convention), the fallbacks in fallback.v4 and fallback.v6, the loader script, and a systemd
 *   unit that runs the loader before the network at every later boot.
 * - The loader (one script, rendered here for both places): per family, the fallback first
 *   (onLoadFailure 'lockdown'), then the address sets and the real table; a family whose real
 *   table fails keeps its fallback; IPv4 and IPv6 load independently; a failure is loud (a
 *   console and journal line, exit 1: the unit is `failed`, cloud-init records the error).
 * - `runcmd` enables (and starts) the unit: write_files cannot enable a unit, and `bootcmd`, the
 *   only earlier hook, runs before write_files, when the unit file does not exist yet.
 * - `bootcmd` runs the same loader on the first boot of an instance, with its own copy of every
 *   table in here-documents, since write_files has not run yet. cloud-init's network stage has
 *   brought the network up by then: for those seconds only the security group protects the host.
 * - The document is gzip-compressed only when it does not fit EC2's 16,384 bytes plain.
 */
import { gzipSync } from 'zlib';
import { Document, Scalar, visit } from 'yaml';
import { TwinwallError, show } from '../errors';
import { checkName } from '../flow';
import { LOAD_FAILURE_MODES, LoadFailureMode } from '../policy';
import { NFT_DROP_ONLY_TABLE, NFT_FALLBACK_PATH, NFT_HEREDOC, NFT_RULES_PATH } from './nftables';

/** EC2 accepts at most 16 KiB of user data (before base64). */
export const USER_DATA_LIMIT_BYTES = 16384;

export const RULES_V4_PATH = '/etc/iptables/rules.v4';
export const RULES_V6_PATH = '/etc/iptables/rules.v6';
/** The fallbacks (lockdown): loaded before the real tables, kept by a family whose table fails. */
export const FALLBACK_V4_PATH = '/etc/iptables/fallback.v4';
export const FALLBACK_V6_PATH = '/etc/iptables/fallback.v6';
export const FIREWALL_UNIT = 'twinwall-firewall.service';
export const FIREWALL_UNIT_PATH = `/etc/systemd/system/${FIREWALL_UNIT}`;
/** The loader the unit runs (`start` at boot, `reload` for ExecReload). */
export const LOADER_PATH = '/usr/local/sbin/twinwall-firewall-load';
export const IPTABLES_RESTORE = '/usr/sbin/iptables-restore';
export const IP6TABLES_RESTORE = '/usr/sbin/ip6tables-restore';
/** Where the address sets live when the host wall has any (ipset-persistent's convention). */
export const IPSETS_PATH = '/etc/iptables/ipsets';
export const IPSET = '/usr/sbin/ipset';

/** The rules files hold no secret, but nobody but root needs to read them. */
export const RULES_PERMISSIONS = '0640';
export const UNIT_PERMISSIONS = '0644';
export const LOADER_PERMISSIONS = '0755';

/**
 * Here-document delimiters of the first-boot script, by what they carry (a delimiter gets a
 * numeric suffix only when a table line equals it). The checker tells the copies apart by them.
 */
export const HEREDOC = {
  fallback: { 4: 'TWINWALL_FALLBACK_V4', 6: 'TWINWALL_FALLBACK_V6' },
  rules: { 4: 'TWINWALL_RULES_V4', 6: 'TWINWALL_RULES_V6' },
  ipsets: 'TWINWALL_IPSETS',
  dropOnly: 'TWINWALL_DROP_ONLY',
} as const;

/** The nft binary the loader runs (Debian, Ubuntu, Amazon Linux 2023 and RHEL put it here). */
export const NFT = '/usr/sbin/nft';
const NFT_DROP_ONLY_HEREDOC = 'TWINWALL_NFT_DROP_ONLY';

/** cloud-init-per semaphore name of the first-boot load (one run per instance id). */
export const FIRST_BOOT_SEMAPHORE = 'twinwall_firewall_first_boot';

/**
 * Loaded when a family's fallback itself fails (a kernel without conntrack, say): DROP policies
 * and loopback, no match at all. The host is closed and unreachable, and says so; the same for
 * both families.
 */
export const DROP_ONLY_TABLE = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT DROP [0:0]', '-A INPUT -i lo -j ACCEPT', '-A OUTPUT -o lo -j ACCEPT', 'COMMIT', ''].join('\n');

export interface UserDataOptions {
  /** The host's name, for the comment at the top and the boot-time messages. */
  readonly host?: string;
  /**
   * 'lockdown' (default) needs `tables.fallback` (renderFallback(policy)); 'open' ships none,
   * and a family whose table fails stays unfiltered on the host.
   */
  readonly onLoadFailure?: LoadFailureMode;
}

/** What the user-data ships: the real tables, the sets they match, and the fallbacks. */
export interface HostWallTables {
  readonly v4: string;
  readonly v6: string;
  readonly ipsets?: string;
  /** renderFallback(policy): required when onLoadFailure is 'lockdown' (the default). */
  readonly fallback?: { readonly v4: string; readonly v6: string };
}

/**
 * An nftables host wall (lib/render/nftables.ts): one file for both families, and its fallback
 * (renderNftablesFallback) when onLoadFailure is 'lockdown'.
 */
export interface NftablesWallFiles {
  readonly nftables: string;
  readonly fallback?: string;
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
 * The systemd unit that runs the loader at every boot after the first. Its [Unit] header is
 * netfilter-persistent's: `DefaultDependencies=no` (without it, the implicit After=sysinit.target
 * closes an ordering cycle with cloud-init.service, which is ordered before sysinit.target and
 * after the network, and systemd breaks it by dropping cloud-init's network stage), then after
 * the local file systems and kernel modules, before network-pre.target.
 *
 * One ExecStart: the loader loads each family on its own (systemd would stop at the first
 * failing ExecStart line and skip the other family). Its failure line goes to the console and
 * the journal; a failed load leaves the unit `failed`. No ExecStop: stopping the unit (at
 * shutdown, say) must not open the host. `WantedBy=multi-user.target` only makes the unit part
 * of a normal boot; the ordering comes from `Before=network-pre.target`, and with
 * `DefaultDependencies=no` the wanting target adds no ordering of its own (see docs/user-data.md
 * for why not sysinit.target).
 */
export function renderFirewallUnit(backend: 'iptables' | 'nftables' = 'iptables'): string {
  return [
    '[Unit]',
    backend === 'nftables' ? `Description=twinwall host firewall (loads ${NFT_RULES_PATH})` : 'Description=twinwall host firewall (loads /etc/iptables/rules.v4 and rules.v6)',
    backend === 'nftables' ? 'Documentation=man:nft(8)' : 'Documentation=man:iptables-restore(8)',
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
    `ExecStart=${LOADER_PATH} start`,
    `ExecReload=${LOADER_PATH} reload`,
    'StandardOutput=journal',
    'StandardError=journal+console',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** A here-document delimiter that is no line of any of `texts`. */
function delimiter(base: string, ...texts: string[]): string {
  const lines = new Set(texts.flatMap((t) => t.split('\n')));
  let d = base;
  for (let i = 1; lines.has(d); i++) d = `${base}_${i}`;
  return d;
}

/** Single-quote for sh. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

interface LoaderSpec {
  readonly tables: HostWallTables | NftablesWallFiles;
  readonly host?: string;
  readonly mode: LoadFailureMode;
  /** 'inline': bootcmd (here-documents, first boot); 'files': the unit's loader script. */
  readonly source: 'inline' | 'files';
}

/**
 * The loader, in POSIX sh: one script for the unit (reading the files; `start` or `reload`) and
 * for bootcmd (its own copies in here-documents; first boot). Steps:
 *
 * 1. (lockdown, start) each family's fallback, so both are closed before anything else; a
 *    fallback that fails gets DROP_ONLY_TABLE instead;
 * 2. the address sets, when there are any;
 * 3. each family's real table on its own (a family whose table matches sets is not loaded when
 *    the sets failed: a half-filled set is not what was declared); a failure keeps what the
 *    family had: its fallback at boot, its previous table at a reload;
 * 4. a failure prints one line (stderr: console and journal, cloud-init-output.log) and exits 1.
 */
export function renderLoader(spec: LoaderSpec): string {
  if ('nftables' in spec.tables) return renderNftablesLoader({ ...spec, tables: spec.tables });
  const tables = spec.tables;
  const { mode, source } = spec;
  const inline = source === 'inline';
  const all = [tables.v4, tables.v6, tables.ipsets ?? '', tables.fallback?.v4 ?? '', tables.fallback?.v6 ?? '', DROP_ONLY_TABLE];
  // `cmd` fed `text` (inline) or reading `file`: the line, and the here-document lines after it.
  const feed = (cmd: string, fileArgs: string, text: string, delim: string, after: string): string[] =>
    inline ? [`${cmd} <<'${delimiter(delim, ...all)}'${after}`, `${text}${delimiter(delim, ...all)}`] : [`${cmd} ${fileArgs}${after}`];
  const out = loaderHead(spec, 'twinwall host firewall loader', 'every table travels');
  const lockdown = mode === 'lockdown';
  if (lockdown) {
    const fb = tables.fallback as { v4: string; v6: string };
    out.push('fallback_failed=""');
    out.push('# 1. Each family\'s fallback first (core matches only): both families are closed before anything else.');
    if (!inline) out.push('if [ "$action" = start ]; then');
    for (const [family, tool, text, file] of [
      ['IPv4', IPTABLES_RESTORE, fb.v4, FALLBACK_V4_PATH],
      ['IPv6', IP6TABLES_RESTORE, fb.v6, FALLBACK_V6_PATH],
    ] as const) {
      const delim = family === 'IPv4' ? HEREDOC.fallback[4] : HEREDOC.fallback[6];
      out.push(...feed(tool, file, text, delim, ` || {`));
      out.push(`  fallback_failed="$fallback_failed ${family}"`);
      // DROP_ONLY_TABLE always travels inline: it is tiny, and it must not depend on a file.
      out.push(`  ${tool} <<'${delimiter(HEREDOC.dropOnly, ...all)}'`);
      out.push(`${DROP_ONLY_TABLE}${delimiter(HEREDOC.dropOnly, ...all)}`);
      out.push('}');
    }
    if (!inline) out.push('fi');
  }
  out.push('# 2. The address sets the real tables match.');
  const sets = tables.ipsets !== undefined;
  if (sets) {
    out.push('sets=ok');
    out.push(...feed(`${IPSET} -exist restore`, `-file ${IPSETS_PATH}`, tables.ipsets as string, HEREDOC.ipsets, ' || { sets=failed; failed="$failed ipsets"; }'));
  } else out.push('# (none)');
  out.push(`# 3. Each family's real table on its own: a family whose table fails keeps ${lockdown ? 'its fallback (at a reload: its previous table)' : 'what it had'}.`);
  for (const [family, tool, text, file] of [
    ['IPv4', IPTABLES_RESTORE, tables.v4, RULES_V4_PATH],
    ['IPv6', IP6TABLES_RESTORE, tables.v6, RULES_V6_PATH],
  ] as const) {
    const needsSets = sets && / --match-set /.test(text);
    const cmd = needsSets ? `[ "$sets" = ok ] && ${tool}` : tool;
    out.push(...feed(cmd, file, text, family === 'IPv4' ? HEREDOC.rules[4] : HEREDOC.rules[6], ` || failed="$failed ${family}"`));
  }
  return loaderTail(out, spec, {
    step: 4,
    keeps: lockdown
      ? 'at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had'
      : 'at boot they stay unfiltered on the host (onLoadFailure open): only the security group protects them; at a reload they keep the rules they had',
    fallbackToo: 'the fallback FAILED too for:$fallback_failed; those families drop everything but loopback.',
    fallbackOnly: 'the fallback FAILED for:$fallback_failed (the real tables loaded over it).',
  });
}

/**
 * The lines both loaders begin with: the script header (the file) or the first-boot note
 * (bootcmd), who is speaking in log lines, the action (start or reload), and no failure yet.
 */
function loaderHead(spec: LoaderSpec, title: string, travels: string): string[] {
  const inline = spec.source === 'inline';
  const who = spec.host === undefined ? 'twinwall' : `twinwall (${spec.host})`;
  const out: string[] = inline
    ? [`# First boot only: write_files has not run yet, so ${travels} here too.`]
    : [
        '#!/bin/sh',
        `# ${title}: generated at synth time from the host policy; change the policy, not this file.`,
        '# Usage: twinwall-firewall-load start|reload (twinwall-firewall.service runs it). docs/user-data.md',
      ];
  out.push(`who=${shellQuote(who)}`);
  out.push(inline ? 'action=start' : 'action="${1:-start}"');
  if (!inline) out.push('case "$action" in start|reload) ;; *) echo "$who: usage: $0 start|reload" >&2; exit 2 ;; esac');
  out.push('failed=""');
  return out;
}

/**
 * The lines both loaders end with: loud on failure (what the host keeps, and whether the fallback
 * failed too), then the line that says it loaded; the script as text.
 */
function loaderTail(out: string[], spec: LoaderSpec, say: { readonly step: number; readonly keeps: string; readonly fallbackToo: string; readonly fallbackOnly: string }): string {
  const lockdown = spec.mode === 'lockdown';
  out.push(`# ${say.step}. Loud on failure: the console, the journal / cloud-init-output.log, and the exit status.`);
  out.push('if [ -n "$failed" ]; then');
  out.push(`  echo "$who: FAILED to load the host firewall ($action) for:$failed; ${say.keeps}. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall)." >&2`);
  if (lockdown) out.push(`  [ -z "$fallback_failed" ] || echo "$who: ${say.fallbackToo}" >&2`);
  out.push('  exit 1');
  out.push('fi');
  if (lockdown) {
    out.push('if [ -n "$fallback_failed" ]; then');
    out.push(`  echo "$who: ${say.fallbackOnly}" >&2`);
    out.push('  exit 1');
    out.push('fi');
  }
  out.push(spec.source === 'inline' ? 'echo "$who: host firewall loaded (first boot)"' : 'echo "$who: host firewall loaded ($action)"');
  return `${out.join('\n')}\n`;
}

/**
 * The loader of an nftables wall, in POSIX sh, for the unit (files) and bootcmd (here-documents):
 *
 * 1. (lockdown, start) the fallback table first; if nft refuses it, NFT_DROP_ONLY_TABLE;
 * 2. the wall: `add table`, `delete table`, the definition — one transaction for both families
 *    and the sets, so a failure changes nothing: the fallback stays (at a reload, the previous
 *    wall);
 * 3. a failure prints one line (stderr: console and journal, cloud-init-output.log) and exits 1.
 */
function renderNftablesLoader(spec: LoaderSpec & { readonly tables: NftablesWallFiles }): string {
  const { tables, mode, source } = spec;
  const inline = source === 'inline';
  const all = [tables.nftables, tables.fallback ?? '', NFT_DROP_ONLY_TABLE];
  const feed = (cmd: string, file: string, text: string, delim: string, after: string): string[] =>
    inline ? [`${cmd} -f - <<'${delimiter(delim, ...all)}'${after}`, `${text}${delimiter(delim, ...all)}`] : [`${cmd} -f ${file}${after}`];
  const out = loaderHead(spec, 'twinwall host firewall loader (nftables)', 'the wall travels');
  const lockdown = mode === 'lockdown';
  if (lockdown) {
    out.push('fallback_failed=""');
    out.push('# 1. The fallback first (core matches only): the host is closed before anything else.');
    if (!inline) out.push('if [ "$action" = start ]; then');
    out.push(...feed(NFT, NFT_FALLBACK_PATH, tables.fallback as string, NFT_HEREDOC.fallback, ' || {'));
    out.push('  fallback_failed=" nftables"');
    out.push(`  ${NFT} -f - <<'${delimiter(NFT_DROP_ONLY_HEREDOC, ...all)}'`);
    out.push(`${NFT_DROP_ONLY_TABLE}${delimiter(NFT_DROP_ONLY_HEREDOC, ...all)}`);
    out.push('}');
    if (!inline) out.push('fi');
  }
  out.push(`# 2. The wall, both families in one transaction: a failure changes nothing, so the table keeps ${lockdown ? 'the fallback (at a reload: the previous wall)' : 'what it had'}.`);
  out.push(...feed(NFT, NFT_RULES_PATH, tables.nftables, NFT_HEREDOC.rules, ' || failed="$failed nftables"'));
  return loaderTail(out, spec, {
    step: 3,
    keeps: lockdown
      ? 'at boot the host keeps the fallback (drop; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the wall it had'
      : 'at boot the host stays unfiltered (onLoadFailure open): only the security group protects it; at a reload it keeps the wall it had',
    fallbackToo: 'the fallback FAILED too; the host drops everything but loopback.',
    fallbackOnly: 'the fallback FAILED (the wall loaded over it).',
  });
}

/**
 * The first-boot script (run by `sh -c` under `cloud-init-per instance`): the loader with its
 * own copy of every table. A failure is loud: a message on the console and in
 * /var/log/cloud-init-output.log, and a non-zero exit cloud-init reports for bootcmd.
 */
export function renderFirstBootScript(tables: HostWallTables, host?: string, onLoadFailure: LoadFailureMode = 'lockdown'): string {
  if (host !== undefined) checkName(host, 'The host name');
  return renderLoader({ tables: checkTables(tables, onLoadFailure), mode: onLoadFailure, source: 'inline', ...(host === undefined ? {} : { host }) });
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

/** Validate the tables for `mode`: lockdown needs a fallback, open ships none. */
function checkTables(tables: HostWallTables, mode: LoadFailureMode): HostWallTables {
  if (!LOAD_FAILURE_MODES.includes(mode)) {
    throw new TwinwallError('OPTION_INVALID', { value: mode, problem: `onLoadFailure ${show(mode)} is not "lockdown" or "open".`, fix: 'use "lockdown" (default) or "open".' });
  }
  const v4 = checkTable(tables?.v4, 'IPv4');
  const v6 = checkTable(tables?.v6, 'IPv6');
  const ipsets = tables?.ipsets === undefined ? undefined : checkTable(tables.ipsets, 'ipset');
  if (mode === 'open') {
    if (tables.fallback !== undefined) {
      throw new TwinwallError('OPTION_INVALID', { value: 'fallback', problem: 'a fallback was given with onLoadFailure "open", which loads none.', fix: 'leave the fallback out, or use onLoadFailure "lockdown".' });
    }
    return { v4, v6, ...(ipsets === undefined ? {} : { ipsets }) };
  }
  if (tables.fallback === undefined) {
    throw new TwinwallError('OPTION_INVALID', {
      value: 'fallback',
      problem: 'onLoadFailure "lockdown" (the default) needs the fallback tables, and none were given: a failed load would leave the host open.',
      fix: 'pass fallback: renderFallback(policy) with the tables (renderHost does), or choose onLoadFailure "open" knowingly.',
    });
  }
  const fallback = { v4: checkTable(tables.fallback.v4, 'IPv4 fallback'), v6: checkTable(tables.fallback.v6, 'IPv6 fallback') };
  return { v4, v6, ...(ipsets === undefined ? {} : { ipsets }), fallback };
}

/** Validate an nftables wall for `mode`: lockdown needs its fallback, open ships none. */
function checkNftFiles(files: NftablesWallFiles, mode: LoadFailureMode): NftablesWallFiles {
  if (!LOAD_FAILURE_MODES.includes(mode)) {
    throw new TwinwallError('OPTION_INVALID', { value: mode, problem: `onLoadFailure ${show(mode)} is not "lockdown" or "open".`, fix: 'use "lockdown" (default) or "open".' });
  }
  const nftables = checkTable(files?.nftables, 'nftables');
  if (mode === 'open') {
    if (files.fallback !== undefined) {
      throw new TwinwallError('OPTION_INVALID', { value: 'fallback', problem: 'a fallback was given with onLoadFailure "open", which loads none.', fix: 'leave the fallback out, or use onLoadFailure "lockdown".' });
    }
    return { nftables };
  }
  if (files.fallback === undefined) {
    throw new TwinwallError('OPTION_INVALID', {
      value: 'fallback',
      problem: 'onLoadFailure "lockdown" (the default) needs the nftables fallback, and none was given: a failed load would leave the host open.',
      fix: 'pass fallback: renderNftablesFallback(policy).text with the wall (renderHost does), or choose onLoadFailure "open" knowingly.',
    });
  }
  return { nftables, fallback: checkTable(files.fallback, 'nftables fallback') };
}

/** Build the `#cloud-config` text (uncompressed). */
export function renderCloudConfig(tables: HostWallTables | NftablesWallFiles, options: UserDataOptions = {}): string {
  if (options.host !== undefined) checkName(options.host, 'The host name');
  const mode = options.onLoadFailure ?? 'lockdown';
  const nft = 'nftables' in tables;
  const host = options.host === undefined ? {} : { host: options.host };
  const file = (path: string, permissions: string, content: string) => ({ path, owner: 'root:root', permissions, content });
  let t: HostWallTables | NftablesWallFiles;
  let wallFiles: ReturnType<typeof file>[];
  if (nft) {
    const n = checkNftFiles(tables, mode);
    t = n;
    wallFiles = [file(NFT_RULES_PATH, RULES_PERMISSIONS, n.nftables), ...(n.fallback === undefined ? [] : [file(NFT_FALLBACK_PATH, RULES_PERMISSIONS, n.fallback)])];
  } else {
    const i = checkTables(tables, mode);
    t = i;
    wallFiles = [
      file(RULES_V4_PATH, RULES_PERMISSIONS, i.v4),
      file(RULES_V6_PATH, RULES_PERMISSIONS, i.v6),
      ...(i.fallback === undefined ? [] : [file(FALLBACK_V4_PATH, RULES_PERMISSIONS, i.fallback.v4), file(FALLBACK_V6_PATH, RULES_PERMISSIONS, i.fallback.v6)]),
      ...(i.ipsets === undefined ? [] : [file(IPSETS_PATH, RULES_PERMISSIONS, i.ipsets)]),
    ];
  }
  const doc = new Document(
    {
      bootcmd: [['cloud-init-per', 'instance', FIRST_BOOT_SEMAPHORE, '/bin/sh', '-c', renderLoader({ tables: t, mode, source: 'inline', ...host })]],
      write_files: [
        ...wallFiles,
        file(LOADER_PATH, LOADER_PERMISSIONS, renderLoader({ tables: t, mode, source: 'files', ...host })),
        file(FIREWALL_UNIT_PATH, UNIT_PERMISSIONS, renderFirewallUnit(nft ? 'nftables' : 'iptables')),
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
    `# bootcmd loads the rules at first boot (it runs before write_files, so it carries its own copy);`,
    ...(nft
      ? [
          `# ${FIREWALL_UNIT} loads ${NFT_RULES_PATH} (nft -f: table inet twinwall, both families in one transaction) before the network at every later boot${mode === 'lockdown' ? ',' : '.'}`,
          ...(mode === 'lockdown' ? [`# after its fallback ${NFT_FALLBACK_PATH}, which stays if the wall fails to load (onLoadFailure lockdown).`] : ['# If the wall fails to load, the host stays unfiltered (onLoadFailure open).']),
        ]
      : [
          `# ${FIREWALL_UNIT} loads ${RULES_V4_PATH} and ${RULES_V6_PATH} before the network at every later boot${mode === 'lockdown' ? ',' : '.'}`,
          ...(mode === 'lockdown' ? ['# each family after its fallback, which stays if the real table fails to load (onLoadFailure lockdown).'] : ['# A family whose table fails to load stays unfiltered on the host (onLoadFailure open).']),
        ]),
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
export function renderUserData(tables: HostWallTables | NftablesWallFiles, options: UserDataOptions = {}): UserData {
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
      fix: 'shrink the policy (merge peers into fewer, wider CIDRs; drop roles the host does not play) or split the host; the rules appear twice in the user-data (bootcmd and write_files), the admin rules twice more in the fallbacks.',
    });
  }
  return Object.freeze({ cloudConfig, base64: gz.toString('base64'), gzipped: true, bytes: gz.length, plainBytes: plain.length });
}
