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
 * - The user's own parts (`UserDataPart`: cloud-config and shell scripts) follow the host wall's
 *   part in one MIME multi-part document (composeUserData): the wall's part first, every user
 *   cloud-config part carrying an append merge rule so cloud-init extends the wall's lists
 *   instead of replacing them, and nothing that could switch the wall off (docs/user-data.md,
 *   "Your own parts").
 * - The document is gzip-compressed only when it does not fit EC2's 16,384 bytes plain.
 */
import { posix } from 'path';
import { isDeepStrictEqual } from 'util';
import { gzipSync } from 'zlib';
import { Document, Scalar, parseDocument, visit } from 'yaml';
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

/** The package that installs each binary the loader runs, for the line that says one is missing. */
const LOADER_TOOL_PACKAGES: Readonly<Record<string, string>> = { [IPTABLES_RESTORE]: 'iptables', [IP6TABLES_RESTORE]: 'iptables', [IPSET]: 'ipset', [NFT]: 'nftables' };

/**
 * The loud line for a binary the loader needs and the image lacks (or cannot execute): which,
 * what is not loaded because of it, and the fix.
 */
function missingToolLine(tool: string, consequence: string, otherBackend: 'iptables' | 'nftables'): string {
  return `echo "$who: ${tool} is MISSING (or not executable): ${consequence}. Fix: install the ${LOADER_TOOL_PACKAGES[tool]} package in the image, or choose hostFirewall '${otherBackend}'." >&2`;
}

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
  /**
   * The user's own cloud-init parts (`UserDataPart.cloudConfig`, `UserDataPart.shellScript`),
   * after the host wall's part in a MIME multi-part document; none: the plain #cloud-config.
   */
  readonly userDataParts?: readonly UserDataPart[];
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
  /** The host wall's `#cloud-config` document (the first part when there are user parts), uncompressed. */
  readonly cloudConfig: string;
  /**
   * The whole user-data, uncompressed: `cloudConfig` itself without user parts, else the MIME
   * multi-part document whose first part is `cloudConfig`.
   */
  readonly document: string;
  /** What goes in `user_data_base64`: the document, gzip-compressed first when `gzipped`. */
  readonly base64: string;
  /** True when the plain document did not fit 16,384 bytes and was gzip-compressed. */
  readonly gzipped: boolean;
  /** Size of what EC2 receives (after gzip, before base64), in bytes; at most 16,384. */
  readonly bytes: number;
  /** Size of the plain document (every part) in bytes. */
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
  let d = base;
  for (let i = 1; texts.some((t) => hasLine(t, d)); i++) d = `${base}_${i}`;
  return d;
}

/** Whether `line` is one of the lines of `text` (searched in place: the texts are whole tables). */
function hasLine(text: string, line: string): boolean {
  for (let at = text.indexOf(line); at >= 0; at = text.indexOf(line, at + 1)) {
    const end = at + line.length;
    if ((at === 0 || text[at - 1] === '\n') && (end === text.length || text[end] === '\n')) return true;
  }
  return false;
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
 * 0. the tools: a family whose restore binary is missing (or not executable) loads nothing, not
 *    even its fallback, and says so (at boot only the security group protects it); the other
 *    family loads regardless;
 * 1. (lockdown, start) each family's fallback, so both are closed before anything else; a
 *    fallback that fails gets DROP_ONLY_TABLE instead (the loader notes whether that loaded);
 * 2. the address sets, when there are any (a missing ipset binary fails them, loudly);
 * 3. each family's real table on its own (a family whose table matches sets is not loaded when
 *    the sets failed: a half-filled set is not what was declared); a failure keeps what the
 *    family had: its fallback at boot, its previous table at a reload;
 * 4. a failure prints one line (stderr: console and journal, cloud-init-output.log), and one per
 *    family whose fallback failed, saying what that family holds; then exits 1.
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
  // A family's every load is skipped when its tool is missing (step 0 said so).
  const present = (tool: string) => `[ ! -x ${tool} ] || `;
  const out = loaderHead(spec, 'twinwall host firewall loader', 'every table travels');
  const lockdown = mode === 'lockdown';
  out.push(`# 0. The tools: a family whose tool is missing loads nothing${lockdown ? ', not even its fallback' : ''}, and the other loads regardless.`);
  out.push('missing=""');
  for (const [family, tool] of [
    ['IPv4', IPTABLES_RESTORE],
    ['IPv6', IP6TABLES_RESTORE],
  ] as const) {
    const nothing = `NO host firewall is loaded for ${family}${lockdown ? ' (not its table, not even its fallback)' : ''}: at boot only the security group protects it, at a reload it keeps the rules it had`;
    out.push(`[ -x ${tool} ] || { missing="$missing ${family}"; ${missingToolLine(tool, nothing, 'nftables')}; }`);
  }
  if (lockdown) {
    const fb = tables.fallback as { v4: string; v6: string };
    out.push('fallback_failed=""');
    out.push('unfiltered=""');
    out.push('# 1. Each family\'s fallback first (core matches only): both families are closed before anything else.');
    if (!inline) out.push('if [ "$action" = start ]; then');
    for (const [family, tool, text, file] of [
      ['IPv4', IPTABLES_RESTORE, fb.v4, FALLBACK_V4_PATH],
      ['IPv6', IP6TABLES_RESTORE, fb.v6, FALLBACK_V6_PATH],
    ] as const) {
      const delim = family === 'IPv4' ? HEREDOC.fallback[4] : HEREDOC.fallback[6];
      out.push(...feed(`${present(tool)}${tool}`, file, text, delim, ` || {`));
      out.push(`  fallback_failed="$fallback_failed ${family}"`);
      // DROP_ONLY_TABLE always travels inline: it is tiny, and it must not depend on a file.
      out.push(`  ${tool} <<'${delimiter(HEREDOC.dropOnly, ...all)}' || unfiltered="$unfiltered ${family}"`);
      out.push(`${DROP_ONLY_TABLE}${delimiter(HEREDOC.dropOnly, ...all)}`);
      out.push('}');
    }
    if (!inline) out.push('fi');
  }
  out.push('# 2. The address sets the real tables match.');
  const sets = tables.ipsets !== undefined;
  const realTables = [
    ['IPv4', IPTABLES_RESTORE, tables.v4, RULES_V4_PATH],
    ['IPv6', IP6TABLES_RESTORE, tables.v6, RULES_V6_PATH],
  ] as const;
  const needsSets = (text: string) => sets && / --match-set /.test(text);
  if (sets) {
    const matching = realTables.filter(([, , text]) => needsSets(text)).map(([family]) => family);
    const lost = matching.length === 0 ? 'the address sets cannot load' : `the address sets cannot load, so neither can the ${matching.join(' and ')} table${matching.length > 1 ? 's, which match' : ', which matches'} them`;
    out.push('sets=ok');
    out.push(`[ -x ${IPSET} ] || { sets=missing; failed="$failed ipsets"; ${missingToolLine(IPSET, lost, 'nftables')}; }`);
    out.push(...feed(`[ "$sets" = missing ] || ${IPSET} -exist restore`, `-file ${IPSETS_PATH}`, tables.ipsets as string, HEREDOC.ipsets, ' || { sets=failed; failed="$failed ipsets"; }'));
  } else out.push('# (none)');
  out.push(`# 3. Each family's real table on its own: a family whose table fails keeps ${lockdown ? 'its fallback (at a reload: its previous table)' : 'what it had'}.`);
  for (const [family, tool, text, file] of realTables) {
    const failed = ` || failed="$failed ${family}"`;
    const [cmd, after] = needsSets(text) ? [`${present(tool)}{ [ "$sets" = ok ] && ${tool}`, `; }${failed}`] : [`${present(tool)}${tool}`, failed];
    out.push(...feed(cmd, file, text, family === 'IPv4' ? HEREDOC.rules[4] : HEREDOC.rules[6], after));
  }
  return loaderTail(out, spec, {
    step: 4,
    keeps: lockdown
      ? 'at boot they keep the fallback (DROP; loopback, replies, admin ingress, DHCP and neighbour discovery only), at a reload the rules they had'
      : 'at boot they stay unfiltered on the host (onLoadFailure open): only the security group protects them; at a reload they keep the rules they had',
    dropOnly: 'the fallback FAILED too for: $f; $f drops everything but loopback.',
    unfiltered: 'the fallback FAILED too for: $f, and so did the DROP-only table: $f is UNFILTERED on the host, only the security group protects it.',
    fallbackOnly: 'the fallback FAILED for: $f (its real table loaded over it).',
    missing: true,
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
 * The lines both loaders end with: loud on failure (what the host keeps), then one line per
 * failed fallback ($f: the family) saying what that family really holds — the DROP-only table,
 * nothing (the DROP-only table failed too: unfiltered), or its real table loaded over it — exit 1
 * on any of these or a missing tool (`missing`: step 0 already said which), else the line that
 * says it loaded; the script as text.
 */
function loaderTail(
  out: string[],
  spec: LoaderSpec,
  say: { readonly step: number; readonly keeps: string; readonly dropOnly: string; readonly unfiltered: string; readonly fallbackOnly: string; readonly missing: boolean },
): string {
  const lockdown = spec.mode === 'lockdown';
  out.push(`# ${say.step}. Loud on failure: the console, the journal / cloud-init-output.log, and the exit status.`);
  out.push(`[ -z "$failed" ] || echo "$who: FAILED to load the host firewall ($action) for:$failed; ${say.keeps}. Fix the rules, then: systemctl restart twinwall-firewall (journalctl -u twinwall-firewall)." >&2`);
  if (lockdown) {
    out.push('for f in $fallback_failed; do');
    out.push('  case " $failed " in');
    out.push('    *" $f "*) ;;');
    out.push(`    *) echo "$who: ${say.fallbackOnly}" >&2; continue ;;`);
    out.push('  esac');
    out.push('  case " $unfiltered " in');
    out.push(`    *" $f "*) echo "$who: ${say.unfiltered}" >&2 ;;`);
    out.push(`    *) echo "$who: ${say.dropOnly}" >&2 ;;`);
    out.push('  esac');
    out.push('done');
  }
  out.push(`if [ -n "$failed${lockdown ? '$fallback_failed' : ''}${say.missing ? '$missing' : ''}" ]; then`);
  out.push('  exit 1');
  out.push('fi');
  out.push(spec.source === 'inline' ? 'echo "$who: host firewall loaded (first boot)"' : 'echo "$who: host firewall loaded ($action)"');
  return `${out.join('\n')}\n`;
}

/**
 * The loader of an nftables wall, in POSIX sh, for the unit (files) and bootcmd (here-documents):
 *
 * 0. without nft (missing or not executable) nothing can load, not even the fallback: one line
 *    says so (at boot only the security group protects the host) and the loader exits 1;
 * 1. (lockdown, start) the fallback table first; if nft refuses it, NFT_DROP_ONLY_TABLE (the
 *    loader notes whether that loaded);
 * 2. the wall: `add table`, `delete table`, the definition — one transaction for both families
 *    and the sets, so a failure changes nothing: the fallback stays (at a reload, the previous
 *    wall);
 * 3. a failure prints one line (stderr: console and journal, cloud-init-output.log), and one
 *    more when the fallback failed too, saying what the host holds; then exits 1.
 */
function renderNftablesLoader(spec: LoaderSpec & { readonly tables: NftablesWallFiles }): string {
  const { tables, mode, source } = spec;
  const inline = source === 'inline';
  const all = [tables.nftables, tables.fallback ?? '', NFT_DROP_ONLY_TABLE];
  const feed = (cmd: string, file: string, text: string, delim: string, after: string): string[] =>
    inline ? [`${cmd} -f - <<'${delimiter(delim, ...all)}'${after}`, `${text}${delimiter(delim, ...all)}`] : [`${cmd} -f ${file}${after}`];
  const out = loaderHead(spec, 'twinwall host firewall loader (nftables)', 'the wall travels');
  const lockdown = mode === 'lockdown';
  out.push(`# 0. The tool: without nft nothing loads${lockdown ? ', not even the fallback' : ''}.`);
  const nothing = `NO host firewall is loaded (not the wall${lockdown ? ', not even its fallback' : ''}): at boot only the security group protects the host, at a reload it keeps the wall it had`;
  out.push(`[ -x ${NFT} ] || { ${missingToolLine(NFT, nothing, 'iptables')}; exit 1; }`);
  if (lockdown) {
    out.push('fallback_failed=""');
    out.push('unfiltered=""');
    out.push('# 1. The fallback first (core matches only): the host is closed before anything else.');
    if (!inline) out.push('if [ "$action" = start ]; then');
    out.push(...feed(NFT, NFT_FALLBACK_PATH, tables.fallback as string, NFT_HEREDOC.fallback, ' || {'));
    out.push('  fallback_failed=" nftables"');
    out.push(`  ${NFT} -f - <<'${delimiter(NFT_DROP_ONLY_HEREDOC, ...all)}' || unfiltered=" nftables"`);
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
    dropOnly: 'the fallback FAILED too; the host drops everything but loopback.',
    unfiltered: 'the fallback FAILED too, and so did the DROP-only table: the host is UNFILTERED, only the security group protects it.',
    fallbackOnly: 'the fallback FAILED (the wall loaded over it).',
    missing: false,
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
  return `${header}\n${yamlText(doc)}`;
}

/**
 * Characters that must never travel raw: C0 and C1 controls but tab and line feed, the line and
 * paragraph separators (YAML 1.1 — PyYAML, cloud-init's reader — takes U+0085, U+2028 and U+2029
 * for line breaks, where the `yaml` package keeps them as text), bidi and zero-width controls, the
 * BOM. A string holding one is double-quoted and each such character written as a \u escape.
 */
const ESCAPED = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

/**
 * A document as cloud-init reads it (YAML 1.1, which PyYAML speaks): multi-line strings as
 * literal blocks (tables and scripts stay readable); a string with a character in ESCAPED
 * double-quoted, that character escaped; anything else as `yaml` writes it.
 */
function yamlText(doc: Document): string {
  let escaped = false;
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      if (ESCAPED.test(node.value)) {
        node.type = Scalar.QUOTE_DOUBLE;
        escaped = true;
      } else if (node.value.includes('\n')) node.type = Scalar.BLOCK_LITERAL;
    },
  });
  const text = doc.toString({ lineWidth: 0, indentSeq: true });
  // Only double-quoted scalars can hold such a character here, and `\uXXXX` is an escape in them.
  return escaped ? text.replace(new RegExp(ESCAPED.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
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
 * Render the user-data for a host wall, and the user's own parts after it (`userDataParts`).
 * The 16,384 bytes count the whole document. Throws USER_DATA_TOO_LARGE when even the
 * gzip-compressed document exceeds them.
 */
export function renderUserData(tables: HostWallTables | NftablesWallFiles, options: UserDataOptions = {}): UserData {
  const cloudConfig = renderCloudConfig(tables, options);
  const parts = options.userDataParts ?? [];
  const document = composeUserData(cloudConfig, parts);
  const plain = Buffer.from(document, 'utf8');
  if (plain.length <= USER_DATA_LIMIT_BYTES) {
    return Object.freeze({ cloudConfig, document, base64: plain.toString('base64'), gzipped: false, bytes: plain.length, plainBytes: plain.length });
  }
  const gz = deterministicGzip(plain);
  if (gz.length > USER_DATA_LIMIT_BYTES) {
    const own = parts.length === 0 ? '' : ` (your ${parts.length} part(s) take ${parts.reduce((n, p) => n + Buffer.byteLength(p.content, 'utf8'), 0)} bytes of it plain)`;
    throw new TwinwallError('USER_DATA_TOO_LARGE', {
      value: { plainBytes: plain.length, gzippedBytes: gz.length },
      path: options.host === undefined ? [] : [options.host],
      problem: `the user-data is ${plain.length} bytes plain${own} and ${gz.length} bytes gzip-compressed, but EC2 accepts at most ${USER_DATA_LIMIT_BYTES} bytes.`,
      fix: `shrink the policy (merge peers into fewer, wider CIDRs; drop roles the host does not play) or split the host; the rules appear twice in the user-data (bootcmd and write_files), the admin rules twice more in the fallbacks.${
        parts.length === 0 ? '' : ' Move large files of your own parts into the image, or fetch them from your app\'s own store at boot.'
      }`,
    });
  }
  return Object.freeze({ cloudConfig, document, base64: gz.toString('base64'), gzipped: true, bytes: gz.length, plainBytes: plain.length });
}

// ---------------------------------------------------------------------------------------------
// The user's own parts, and the MIME multi-part document that carries them after the wall's.
// ---------------------------------------------------------------------------------------------

/**
 * The merge rule on every user cloud-config part (cloud-init's `merge_how`, read from the part
 * that is merged in): lists are appended to what the earlier parts built (the host wall's
 * `bootcmd`, `write_files` and `runcmd` stay, first), a key an earlier part set keeps its value,
 * dictionaries merge key by key. cloud-init's default for a part without one is
 * `dict(replace)+list()+str()`: a later `bootcmd` or `write_files` would replace the wall's.
 */
export const USER_PART_MERGE_HOW = 'list(append)+dict(no_replace,recurse_list)+str()';

/**
 * Parts in one user-data, the host wall's included: what the renderer writes at most and the
 * checker reads at most (part names sort as cloud-init runs them up to user-part-64).
 */
export const USER_DATA_PARTS_MAX = 64;

/** The MIME boundary (a numeric suffix when a part holds a line starting with it). */
export const MIME_BOUNDARY = 'TWINWALL-USER-DATA-PART';
/** The host wall's part's file name (Content-Disposition). */
export const HOST_WALL_PART_FILENAME = 'twinwall-host-wall.cfg';
/**
 * The MIME types cloud-init dispatches on. A shell script lands in cloud-init's scripts folder
 * under its part's file name, and cloud-init runs that folder in name order: `user-part-…`
 * sorts after `runcmd`, so the wall's unit is enabled before the user's scripts run.
 */
export const PART_TYPES: Readonly<Record<UserDataPartKind, string>> = { 'cloud-config': 'text/cloud-config', 'shell-script': 'text/x-shellscript' };
const PART_EXTENSION: Readonly<Record<UserDataPartKind, string>> = { 'cloud-config': 'cfg', 'shell-script': 'sh' };

/** The kinds of part a user may add: cloud-config, or a shell script. */
export type UserDataPartKind = 'cloud-config' | 'shell-script';

/** cloud-init's module lists: a part that sets one decides which modules run (bootcmd among them). */
export const CLOUD_INIT_MODULE_KEYS: readonly string[] = ['cloud_init_modules', 'cloud_config_modules', 'cloud_final_modules'];
/** The keys cloud-init reads a part's own merge rule from. */
export const MERGE_KEYS: readonly string[] = ['merge_how', 'merge_type'];

/**
 * Folders a user's write_files may not write into: the host wall's files (iptables, nftables),
 * cloud-init's configuration (module lists for later boots) and state (the first-boot
 * semaphore).
 */
export const OWNED_FOLDERS: readonly string[] = ['/etc/iptables/', '/etc/twinwall/', '/etc/cloud/', '/var/lib/cloud/'];
/** Files the same: the wall's loader and unit, and other loaders' rules files (RHEL's iptables-services, Debian's nftables.service). */
export const OWNED_FILES: readonly string[] = [LOADER_PATH, FIREWALL_UNIT_PATH, '/etc/sysconfig/iptables', '/etc/sysconfig/ip6tables', '/etc/nftables.conf'];

/** Why a write_files path is the host wall's, or undefined when it is the user's to write. */
export function ownedPathReason(path: string): string | undefined {
  const p = posix.resolve('/', path);
  const folder = OWNED_FOLDERS.find((f) => `${p}/`.startsWith(f));
  if (folder !== undefined) return `it is inside ${folder}, which ${folder.includes('cloud') ? 'cloud-init keeps its configuration and state in' : 'holds the host wall\'s rules'}`;
  if (OWNED_FILES.includes(p)) return p === LOADER_PATH || p === FIREWALL_UNIT_PATH ? 'it is the host wall\'s loader or unit' : 'another loader loads firewall rules from it at boot';
  // The unit's drop-ins (…/twinwall-firewall.service.d/), a mask or an enablement link.
  if (p.split('/').some((c) => c.toLowerCase().startsWith('twinwall'))) return 'a path named twinwall… is the host wall\'s (its unit, drop-ins, links and files)';
  return undefined;
}

/** One reason a user cloud-config cannot be composed with the host wall. */
export interface PartProblem {
  /** Where in the part: "write_files[1].path", "cloud_final_modules". */
  readonly where: string;
  readonly value: unknown;
  readonly problem: string;
  readonly fix: string;
}

/**
 * What is wrong with a user cloud-config (parsed), as the renderer refuses it and the checker
 * reports it. `shipped`: the part as it travels in user-data, which must carry exactly
 * USER_PART_MERGE_HOW; otherwise the part as the user gave it, which must carry no merge rule.
 */
export function userCloudConfigProblems(config: unknown, shipped: boolean): PartProblem[] {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return [{ where: '(top)', value: config, problem: 'a cloud-config part is not a mapping of cloud-init keys.', fix: 'give a mapping, e.g. { packages: ["nginx"] }.' }];
  }
  const cfg = config as Record<string, unknown>;
  const out: PartProblem[] = [];
  for (const key of MERGE_KEYS) {
    if (!(key in cfg)) continue;
    if (shipped && key === 'merge_how' && cfg[key] === USER_PART_MERGE_HOW) continue;
    out.push({
      where: key,
      value: cfg[key],
      problem: shipped
        ? `the part sets ${key} ${show(cfg[key])}, not twinwall's ${show(USER_PART_MERGE_HOW)}: cloud-init merges it by that rule, which may replace the host wall's bootcmd and write_files.`
        : `the part sets cloud-init's merge rule (${key}); twinwall sets it on every user part (${USER_PART_MERGE_HOW}), so lists extend the host wall's and never replace them.`,
      fix: 'leave merge_how and merge_type out; twinwall appends your lists (bootcmd, write_files, runcmd, packages …) after the host wall\'s.',
    });
  }
  if (shipped && !('merge_how' in cfg)) {
    out.push({
      where: 'merge_how',
      value: undefined,
      problem: `the part has no merge rule, so cloud-init's default (dict(replace)+list()+str()) replaces the host wall's bootcmd, write_files and runcmd with the part's own.`,
      fix: `render the user-data with twinwall (UserDataPart), which gives every user part merge_how ${show(USER_PART_MERGE_HOW)}.`,
    });
  }
  for (const key of CLOUD_INIT_MODULE_KEYS) {
    if (key in cfg) {
      out.push({
        where: key,
        value: cfg[key],
        problem: `the part sets cloud-init's module list ${key}, which decides whether bootcmd, write_files and runcmd (the host wall's first-boot load, files and unit) run at all.`,
        fix: 'leave the module lists to the image (/etc/cloud/cloud.cfg); configure the modules you need by their own keys.',
      });
    }
  }
  for (const key of ['bootcmd', 'runcmd']) {
    // The host wall's first-boot semaphore: a command under it is skipped, or skips the wall's.
    if (key in cfg && JSON.stringify(cfg[key] ?? null).includes(FIRST_BOOT_SEMAPHORE)) {
      out.push({
        where: key,
        value: FIRST_BOOT_SEMAPHORE,
        problem: `${key} uses the host wall's first-boot semaphore ${show(FIRST_BOOT_SEMAPHORE)} (cloud-init-per), which decides whether the wall's first-boot load runs.`,
        fix: 'give your cloud-init-per commands names of their own.',
      });
    }
  }
  if ('write_files' in cfg) {
    const files = cfg.write_files;
    if (!Array.isArray(files)) {
      out.push({ where: 'write_files', value: files, problem: 'write_files is not a list.', fix: 'give a list of { path, content } entries.' });
    } else {
      files.forEach((f, i) => {
        const path = f !== null && typeof f === 'object' ? (f as Record<string, unknown>).path : undefined;
        if (typeof path !== 'string' || path === '') {
          out.push({ where: `write_files[${i}].path`, value: path, problem: 'a write_files entry has no path twinwall can read.', fix: 'give every entry a literal path, e.g. "/etc/myapp/config.yml".' });
          return;
        }
        const why = ownedPathReason(path);
        if (why !== undefined) {
          out.push({
            where: `write_files[${i}].path`,
            value: path,
            problem: `write_files would write ${show(path)}: ${why}, and a later write replaces (or disables) what the host wall installed.`,
            fix: 'write your files elsewhere (your app\'s own folders); the host wall\'s rules come from the policy: change its roles, not its files.',
          });
        }
      });
    }
  }
  return out;
}

function partError(kind: UserDataPartKind, p: PartProblem): TwinwallError {
  return new TwinwallError('USER_DATA_PART_INVALID', { value: p.value, path: [`UserDataPart.${kind === 'cloud-config' ? 'cloudConfig' : 'shellScript'}`, p.where], problem: p.problem, fix: p.fix });
}

/** A JSON value (what a cloud-config is), checked; anything else is refused with where it is. */
function checkJson(value: unknown, where: string, depth = 0): void {
  const refuse = (what: string) =>
    partError('cloud-config', { where, value: typeof value === 'object' ? what : value, problem: `the cloud-config holds ${what} at ${where}, which YAML for cloud-init cannot carry as given.`, fix: 'use strings, finite numbers, booleans, null, lists and mappings only (quote dates and other special values).' });
  if (depth > 64) throw refuse('a value nested more than 64 levels deep');
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    // A lone surrogate is no text at all: UTF-8 would turn it into U+FFFD.
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) throw refuse('a string with a lone UTF-16 surrogate');
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw refuse(`the number ${String(value)}`);
    // Beyond 2^53 JavaScript has already rounded it: what would ship is not what was written.
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw refuse(`the integer ${String(value)}, beyond what JavaScript holds exactly`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${where}[${i}]`, depth + 1));
    return;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw refuse(`an object of type ${(value as object).constructor?.name ?? 'unknown'}`);
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) checkJson(v, where === '(top)' ? k : `${where}.${k}`, depth + 1);
    return;
  }
  throw refuse(`a ${typeof value}`);
}

/** Parse a user's cloud-config text as cloud-init would (YAML 1.1), refusing what it would read differently. */
function parseCloudConfigText(text: string): unknown {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => l.trim() !== '');
  const head = first < 0 ? '' : lines[first].trim();
  // Another part type's header (cloud-init's handlers.INCLUSION_TYPES_MAP); a plain comment is fine.
  const other = ['#include', '#!', '#part-handler', '#cloud-boothook', '#cloud-config-archive', '#cloud-config-jsonp', '## template:'];
  if (other.some((p) => head.toLowerCase().startsWith(p))) {
    const kind = head.toLowerCase().startsWith('#!') ? 'a shell script' : `a ${show(head.split(/\s/)[0])} part`;
    throw partError('cloud-config', {
      where: '(text)',
      value: head,
      problem: `the text starts with ${show(head)}: ${kind}, not a cloud-config. twinwall composes cloud-config parts and shell scripts only; boothooks, includes, part handlers, archives, JSON patches and templates run before the host wall or change how parts merge.`,
      fix: 'start a cloud-config with "#cloud-config" (or no header), and pass a script as UserDataPart.shellScript("#!/bin/sh\\n…").',
    });
  }
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: true, prettyErrors: false });
  const issue = [...doc.errors, ...doc.warnings][0];
  if (issue !== undefined) {
    throw partError('cloud-config', { where: '(text)', value: issue.message.split('\n')[0], problem: `the cloud-config text is not YAML cloud-init reads as twinwall does: ${issue.message.split('\n')[0]}`, fix: 'fix the YAML (no duplicate keys, no custom tags), or pass the config as an object.' });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw partError('cloud-config', { where: '(text)', value: (e as Error).message, problem: `the cloud-config text cannot be read: ${(e as Error).message}`, fix: 'fix the YAML (aliases expand to at most 100 nodes), or pass the config as an object.' });
  }
  return value;
}

/**
 * One part of the user's own cloud-init configuration, composed after the host wall's part in
 * the instance's user-data (`FilteredHost`'s `userDataParts`, `renderUserData`'s option):
 *
 *   UserDataPart.cloudConfig({ packages: ['nginx'], write_files: [{ path: '/etc/nginx/conf.d/app.conf', content }] })
 *   UserDataPart.shellScript('#!/bin/sh\nsystemctl enable --now nginx\n')
 *
 * A cloud-config part is shipped with twinwall's merge rule (USER_PART_MERGE_HOW): its lists
 * are appended to the host wall's (its `bootcmd` runs after the wall's first-boot load, its
 * `runcmd` after the unit is enabled), and a key the wall already set keeps the wall's value.
 * Refused (TW231 USER_DATA_PART_INVALID): a merge rule of its own, cloud-init's module lists,
 * write_files over a path the host wall owns (ownedPathReason), and text that is another part
 * type (a boothook or an #include runs before the wall or fetches what twinwall cannot see). A
 * shell script runs as root in cloud-init's final stage, after the wall is loaded: it can do
 * anything root can, flushing the tables included (docs/user-data.md says what that means).
 */
export class UserDataPart {
  /**
   * A cloud-config part: a mapping of cloud-init keys (as an object), or its YAML text (with or
   * without the `#cloud-config` line; comments are not kept, the part is rendered from what the
   * text means).
   */
  public static cloudConfig(config: Readonly<Record<string, unknown>> | string): UserDataPart {
    const value = typeof config === 'string' ? parseCloudConfigText(config) : config;
    checkJson(value, '(top)');
    const problems = userCloudConfigProblems(value, false);
    if (problems.length > 0) throw partError('cloud-config', problems[0]);
    const shipped = { merge_how: USER_PART_MERGE_HOW, ...(value as Record<string, unknown>) };
    const text = `#cloud-config\n${yamlText(new Document(shipped, { version: '1.1' }))}`;
    // What cloud-init reads back must be what was given: anything the YAML could not carry is refused, never shipped altered.
    const back = parseDocument(text, { version: '1.1' });
    if (back.errors.length > 0 || !isDeepStrictEqual(back.toJS(), shipped)) {
      throw partError('cloud-config', { where: '(top)', value: config, problem: 'the cloud-config does not survive YAML for cloud-init unchanged.', fix: 'use plain strings, numbers, booleans, lists and mappings.' });
    }
    return new UserDataPart('cloud-config', text);
  }

  /** A shell script (starts with `#!`), run as root once per instance in cloud-init's final stage. */
  public static shellScript(script: string): UserDataPart {
    if (typeof script !== 'string' || !script.startsWith('#!')) {
      throw partError('shell-script', {
        where: '(text)',
        value: typeof script === 'string' ? script.split('\n')[0] : script,
        problem: `a shell script part must start with "#!" (cloud-init runs it by its interpreter line); it starts with ${show(typeof script === 'string' ? script.split('\n')[0] : script)}.`,
        fix: 'start it with an interpreter line, e.g. "#!/bin/sh"; pass cloud-config as UserDataPart.cloudConfig(…).',
      });
    }
    if (script.includes('\0')) {
      throw partError('shell-script', { where: '(text)', value: 'NUL', problem: 'the script contains a NUL byte, which no shell script holds.', fix: 'pass the script as text.' });
    }
    return new UserDataPart('shell-script', script);
  }

  private constructor(
    /** 'cloud-config' or 'shell-script'. */
    public readonly kind: UserDataPartKind,
    /** The part's text exactly as it travels (a cloud-config with twinwall's merge rule first). */
    public readonly content: string,
  ) {
    Object.freeze(this);
  }
}

/** Text that may travel as 7bit MIME (printable ASCII, tabs and line feeds); the rest goes base64. */
const SEVEN_BIT = /^[\x20-\x7e\t\n]*$/;

/**
 * The user-data: the host wall's #cloud-config alone when there are no user parts; otherwise a
 * MIME multi-part document (what cloud-init's `make-mime` writes) whose FIRST part is the host
 * wall's, then the user's parts in the order given. Deterministic: a fixed boundary (a suffix
 * only when a part holds a line starting with it), no dates, no random ids, file names by
 * position (`twinwall-host-wall.cfg`, `user-part-02.cfg`, `user-part-03.sh` …).
 */
export function composeUserData(hostWall: string, parts: readonly UserDataPart[]): string {
  if (!Array.isArray(parts as unknown)) {
    throw new TwinwallError('USER_DATA_PART_INVALID', { value: parts, problem: `userDataParts ${show(parts)} is not a list of parts.`, fix: 'pass [UserDataPart.cloudConfig(…), UserDataPart.shellScript(…)].' });
  }
  parts.forEach((p, i) => {
    if (!(p instanceof UserDataPart)) {
      throw new TwinwallError('USER_DATA_PART_INVALID', {
        value: p,
        path: [`userDataParts[${i}]`],
        problem: `${show(p)} is not a UserDataPart.`,
        fix: 'build each part with UserDataPart.cloudConfig(config) or UserDataPart.shellScript(script), which check that it cannot switch the host wall off.',
      });
    }
  });
  if (parts.length === 0) return hostWall;
  if (parts.length >= USER_DATA_PARTS_MAX) {
    throw new TwinwallError('USER_DATA_PART_INVALID', {
      value: parts.length,
      path: ['userDataParts'],
      problem: `${parts.length} parts are more than the ${USER_DATA_PARTS_MAX - 1} a user-data carries beside the host wall's (twinwall check reads at most ${USER_DATA_PARTS_MAX}).`,
      fix: 'merge your cloud-config parts into one, and your scripts into one.',
    });
  }
  const all = [{ kind: 'cloud-config' as const, content: hostWall, filename: HOST_WALL_PART_FILENAME }, ...parts.map((p, i) => ({ kind: p.kind, content: p.content, filename: `user-part-${String(i + 2).padStart(2, '0')}.${PART_EXTENSION[p.kind]}` }))];
  let boundary = MIME_BOUNDARY;
  for (let n = 1; all.some((p) => p.content.split('\n').some((l) => l.startsWith(`--${boundary}`))); n++) boundary = `${MIME_BOUNDARY}-${n}`;
  const out = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', ''];
  for (const p of all) {
    const plain = SEVEN_BIT.test(p.content);
    out.push(
      `--${boundary}`,
      `Content-Type: ${PART_TYPES[p.kind]}; charset="${plain ? 'us-ascii' : 'utf-8'}"`,
      'MIME-Version: 1.0',
      `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}`,
      `Content-Disposition: attachment; filename="${p.filename}"`,
      '',
      // The line break before a boundary belongs to the boundary: the part's text is exactly `content`.
      plain ? p.content : (Buffer.from(p.content, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\n'),
    );
  }
  out.push(`--${boundary}--`, '');
  return out.join('\n');
}
