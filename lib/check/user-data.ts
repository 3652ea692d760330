/**
 * The host wall as shipped: decode EC2 user-data (base64, gzip or not), parse the #cloud-config
 * with `yaml`, and take the iptables-restore tables from write_files (/etc/iptables/rules.v4 and
 * rules.v6), checking that bootcmd's first-boot copy is identical. Pure: strings in, data out.
 *
 * Decoding is bounded: a user-data decodes to at most USER_DATA_DECODED_MAX bytes, and all the
 * write_files contents it carries (base64, gzip) to at most as much again. gzip is inflated with
 * zlib's output limit, which stops inflating at the limit: a small gzip bomb costs a megabyte,
 * never the gigabytes it expands to. Beyond the limit the host wall is unreadable: a finding.
 */
import { posix } from 'path';
import { gunzipSync } from 'zlib';
import { parse as parseYaml } from 'yaml';
import { FAMILIES, Family } from '../address';
import { FALLBACK_V4_PATH, FALLBACK_V6_PATH, FIREWALL_UNIT_PATH, FIRST_BOOT_SEMAPHORE, HEREDOC, LOADER_PATH, PART_TYPES, USER_DATA_PARTS_MAX, userCloudConfigProblems } from '../render/cloud-config';
import { NFT_FALLBACK_PATH, NFT_HEREDOC, NFT_RULES_PATH } from '../render/nftables';
import { IpsetDefinition, ipsetScript, parseIpsets } from './ipset';

/** Where ipset-persistent (and twinwall) keep the address sets. */
export const IPSETS_PATHS: readonly string[] = ['/etc/iptables/ipsets'];

export const RULES_PATHS: Record<Family, readonly string[]> = {
  4: ['/etc/iptables/rules.v4', '/etc/sysconfig/iptables'],
  6: ['/etc/iptables/rules.v6', '/etc/sysconfig/ip6tables'],
};

/** The fallbacks twinwall's loader puts in place before the real tables (onLoadFailure lockdown). */
export const FALLBACK_PATHS: Record<Family, string> = { 4: FALLBACK_V4_PATH, 6: FALLBACK_V6_PATH };

/** A here-document delimiter twinwall's renderer wrote (a numeric suffix avoids a table line). */
function isDelimiter(delim: string, base: string): boolean {
  return delim === base || new RegExp(`^${base}_\\d+$`).test(delim);
}

export interface HostWallSource {
  /** The decoded user-data text (undefined when it could not be decoded). */
  readonly text?: string;
  readonly gzipped: boolean;
  /** The tables the host loads at every boot (write_files), by family; absent when not shipped. */
  readonly tables: Partial<Record<Family, { readonly path: string; readonly text: string }>>;
  /** bootcmd's first-boot copies, by family. */
  readonly firstBoot: Partial<Record<Family, string>>;
  /**
   * The fallback each family gets before its real table (write_files, checked equal to bootcmd's
   * copy); absent with onLoadFailure 'open'.
   */
  readonly fallback: Partial<Record<Family, { readonly path: string; readonly text: string }>>;
  /**
   * An nftables wall (write_files NFT_RULES_PATH, one file for both families): then `tables[4]`
   * and `tables[6]` are both this file, and `firstBoot` both bootcmd's copy of it.
   */
  readonly nftables?: { readonly path: string; readonly text: string; readonly fallback?: string };
  readonly ipsets: ReadonlyMap<string, IpsetDefinition>;
  /** The ipset create/add lines found, as an `ipset restore` script ('' when none). */
  readonly ipsetScript: string;
  /** Why the host wall is not what it should be (each a finding). */
  readonly problems: readonly string[];
}

/** Is this text a Terraform expression (unknown until apply)? */
export function isTerraformExpression(text: string): boolean {
  return /\$\{|%\{/.test(text);
}

/**
 * What one user-data may decode to, in bytes: 64 times what EC2 accepts (16 KiB), far beyond any
 * host wall twinwall renders, and small enough to read safely.
 */
export const USER_DATA_DECODED_MAX = 1024 * 1024;

const MIB = (n: number) => `${n / (1024 * 1024)} MiB`;

/** gunzip at most `limit` bytes of output; zlib stops at the limit instead of inflating everything. */
export function gunzipBounded(data: Buffer, limit: number, what: string): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: limit });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new Error(`${what} decompresses to more than ${limit} bytes; twinwall decodes at most ${MIB(USER_DATA_DECODED_MAX)} per user-data (EC2 accepts 16 KiB): a decompression bomb, or not a host wall twinwall wrote`);
    }
    throw e;
  }
}

/** Decoding budget of one user-data's write_files contents. */
interface Budget {
  left: number;
}

function decodeContent(content: unknown, encoding: unknown, budget: Budget, what: string): string {
  if (typeof content !== 'string') throw new Error('content is not text');
  const enc = typeof encoding === 'string' ? encoding.toLowerCase() : 'text/plain';
  let out: Buffer;
  if (enc === 'text/plain') return content;
  if (enc === 'b64' || enc === 'base64') out = Buffer.from(content, 'base64');
  else if (enc === 'gz+b64' || enc === 'gzip+base64' || enc === 'gz+base64' || enc === 'gzip+b64') out = gunzipBounded(Buffer.from(content, 'base64'), budget.left, what);
  else throw new Error(`encoding ${enc} is not supported`);
  if (out.length > budget.left) throw new Error(`${what} decodes to more than the ${USER_DATA_DECODED_MAX} bytes twinwall decodes per user-data`);
  budget.left -= out.length;
  return out.toString('utf8');
}

/** Heredoc bodies fed to a command (`CMD <<'DELIM' … DELIM`) in a shell script, by command. */
export function heredocs(script: string): { command: string; body: string; delimiter: string }[] {
  const out: { command: string; body: string; delimiter: string }[] = [];
  const lines = script.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(.*?)<<-?\s*(['"]?)([A-Za-z0-9_]+)\2/.exec(lines[i]);
    if (!m) continue;
    const delim = m[3];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && lines[j] !== delim; j++) body.push(lines[j]);
    out.push({ command: m[1].trim(), body: body.length > 0 ? `${body.join('\n')}\n` : '', delimiter: delim });
    i = j;
  }
  return out;
}

function commandText(entry: unknown): string[] {
  if (typeof entry === 'string') return [entry];
  if (Array.isArray(entry)) return entry.filter((x): x is string => typeof x === 'string');
  return [];
}

function firstDifference(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}: ${JSON.stringify(la[i] ?? '(end)')} vs ${JSON.stringify(lb[i] ?? '(end)')}`;
  }
  return 'they differ';
}

/** Decode user-data given as base64 (user_data_base64, launch templates) or as plain text (user_data). */
export function decodeUserData(value: { base64?: string; plain?: string }): { text: string; gzipped: boolean } {
  let raw: Buffer;
  if (value.base64 !== undefined) {
    if (isTerraformExpression(value.base64)) throw new Error('the user-data is a Terraform expression, known only at apply time');
    const clean = value.base64.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new Error('the user-data is not valid base64');
    if (clean.length > Math.ceil(USER_DATA_DECODED_MAX / 3) * 4) throw new Error(`the user-data is ${clean.length} base64 characters, more than the ${MIB(USER_DATA_DECODED_MAX)} twinwall decodes per user-data (EC2 accepts 16 KiB)`);
    raw = Buffer.from(clean, 'base64');
  } else if (value.plain !== undefined) {
    if (isTerraformExpression(value.plain)) throw new Error('the user-data is a Terraform expression, known only at apply time');
    raw = Buffer.from(value.plain, 'utf8');
    if (raw.length > USER_DATA_DECODED_MAX) throw new Error(`the user-data is ${raw.length} bytes, more than the ${MIB(USER_DATA_DECODED_MAX)} twinwall reads per user-data (EC2 accepts 16 KiB)`);
  } else throw new Error('the host has no user-data');
  const gzipped = raw.length > 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (gzipped) {
    try {
      raw = gunzipBounded(raw, USER_DATA_DECODED_MAX, 'the user-data');
    } catch (e) {
      const m = (e as Error).message;
      throw new Error(m.startsWith('the user-data decompresses') ? m : `the user-data looks gzip-compressed but does not decompress (${m})`);
    }
  }
  return { text: raw.toString('utf8'), gzipped };
}

function setsTextOf(persistent: string | undefined, boot: string | undefined): string | undefined {
  return persistent ?? boot;
}

/**
 * Read the host wall out of decoded user-data text: a #cloud-config document, or a MIME
 * multi-part document (cloud-init's rule: "mime-version:" in its first 4,096 bytes) whose first
 * part is the host wall's and whose later parts cannot switch it off (readMultipart).
 */
export function readHostWall(text: string, gzipped = false): HostWallSource {
  // Python's email parser reads headers up to the first line that is none: a document whose
  // first line is no header ("#cloud-config") is one text/plain body, which cloud-init sniffs.
  if (isMime(text) && PYTHON_HEADER_LINE.test(text.split('\n', 1)[0])) return readMultipart(text, gzipped);
  return readCloudConfigWall(text, gzipped);
}

/** A line Python's email feedparser takes for a header (its headerRE). */
const PYTHON_HEADER_LINE = /^(From |[\x21-\x39\x3b-\x7e]*:|[\t ])/;

/** cloud-init reads user-data as MIME when "mime-version:" is in its first 4,096 bytes (any case). */
export function isMime(text: string): boolean {
  return Buffer.from(text, 'utf8').subarray(0, 4096).toString('latin1').toLowerCase().includes('mime-version:');
}


/** A part as cloud-init would hand it to its handlers. */
export interface MimePart {
  /** 1-based position. */
  readonly index: number;
  /** The type cloud-init dispatches on (after its sniffing of text/plain and text/x-shellscript). */
  readonly type: string;
  readonly filename?: string;
  readonly text: string;
}

/** The prefixes cloud-init sniffs a text/plain or text/x-shellscript part by (handlers.INCLUSION_TYPES_MAP), longest first. */
const SNIFF: readonly [string, string][] = (
  [
    ['#include', 'text/x-include-url'],
    ['#include-once', 'text/x-include-once-url'],
    ['#!', PART_TYPES['shell-script']],
    ['#cloud-config', PART_TYPES['cloud-config']],
    ['#part-handler', 'text/part-handler'],
    ['#cloud-boothook', 'text/cloud-boothook'],
    ['#cloud-config-archive', 'text/cloud-config-archive'],
    ['#cloud-config-jsonp', 'text/cloud-config-jsonp'],
    ['## template: jinja', 'text/jinja2'],
  ] as [string, string][]
).sort((a, b) => b[0].length - a[0].length);

/**
 * Python's `str.lstrip()`, which cloud-init sniffs a part's type after: its whitespace is not
 * JavaScript's (U+001C–U+001F and U+0085 are space to Python, U+FEFF is not), and a part that
 * Python reads as a boothook must not read as a shell script here.
 */
export function pythonLstrip(text: string): string {
  return text.replace(/^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/, '');
}

/** Headers of one MIME entity, strictly: `Name: value` lines, no folding, no repeats. */
function mimeHeaders(lines: readonly string[], where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    if (/^[ \t]/.test(line)) throw new Error(`${where} has a folded header line (${JSON.stringify(line.slice(0, 60))}), which twinwall does not read`);
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (m === null) throw new Error(`${where} has a line that is not a header (${JSON.stringify(line.slice(0, 60))})`);
    const name = m[1].toLowerCase();
    if (out.has(name)) throw new Error(`${where} has two ${m[1]} headers, which cloud-init and twinwall could read differently`);
    out.set(name, m[2].trim());
  }
  return out;
}

/** `type/subtype; a="b"; c=d` → type and parameters (lower-case names). */
function contentType(value: string): { type: string; params: Map<string, string> } {
  const [type, ...rest] = value.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"([^"\\]*)"|([^\s";]+))\s*$/.exec(p);
    if (m === null) throw new Error(`the content type ${JSON.stringify(value)} has a parameter twinwall does not read`);
    params.set(m[1].toLowerCase(), m[2] ?? m[3]);
  }
  return { type: type.trim().toLowerCase(), params };
}

const PART_HEADERS = new Set(['content-type', 'content-transfer-encoding', 'mime-version', 'content-disposition']);

/**
 * Split a multi-part user-data the way cloud-init does (Python's email parser, then its
 * UserDataProcessor), strictly and bounded: anything it cannot read exactly throws, and the
 * caller reports that as a finding.
 */
export function splitMime(text: string): MimePart[] {
  if (text.includes('\r')) throw new Error('the multi-part user-data has carriage returns, which twinwall does not read');
  const lines = text.split('\n');
  const blank = lines.indexOf('');
  if (blank < 0) throw new Error('the multi-part user-data has no blank line after its headers');
  const top = mimeHeaders(lines.slice(0, blank), 'the multi-part user-data');
  for (const name of top.keys()) {
    if (!['content-type', 'mime-version', 'number-attachments'].includes(name)) throw new Error(`the multi-part user-data has a ${name} header, which twinwall does not read`);
  }
  const ct = contentType(top.get('content-type') ?? '');
  if (ct.type !== 'multipart/mixed') throw new Error(`the user-data names MIME but is ${JSON.stringify(ct.type || '(no content type)')}, not multipart/mixed`);
  const boundary = ct.params.get('boundary');
  if (boundary === undefined || boundary === '') throw new Error('the multi-part user-data has no boundary');
  const delimiter = new RegExp(`^--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(--)?[ \t]*$`);
  const parts: MimePart[] = [];
  let body: string[] | undefined;
  let closed = false;
  const finish = (chunk: string[]): void => {
    if (parts.length >= USER_DATA_PARTS_MAX) throw new Error(`the multi-part user-data has more than ${USER_DATA_PARTS_MAX} parts`);
    parts.push(readPart(chunk, parts.length + 1));
  };
  for (const line of lines.slice(blank + 1)) {
    const d = delimiter.exec(line);
    if (d === null) {
      body?.push(line);
      continue;
    }
    if (body !== undefined) finish(body);
    if (d[1] !== undefined) {
      closed = true;
      break;
    }
    body = [];
  }
  if (!closed) throw new Error('the multi-part user-data never closes its last part (no closing boundary)');
  return parts;
}

function readPart(lines: readonly string[], index: number): MimePart {
  const where = `part ${index} of the user-data`;
  const blank = lines.indexOf('');
  if (blank < 0) throw new Error(`${where} has no blank line after its headers`);
  const headers = mimeHeaders(lines.slice(0, blank), where);
  for (const name of headers.keys()) {
    if (PART_HEADERS.has(name)) continue;
    if (name === 'merge-type' || name === 'x-merge-type') throw new Error(`${where} sets its merge rule in a ${name} header, which may replace the host wall's lists`);
    throw new Error(`${where} has a ${name} header, which twinwall does not read (Launch-Index, say, makes a part apply to some instances only)`);
  }
  const ct = contentType(headers.get('content-type') ?? 'text/plain');
  const charset = (ct.params.get('charset') ?? 'us-ascii').toLowerCase();
  if (!['us-ascii', 'utf-8', 'utf8'].includes(charset)) throw new Error(`${where} is in charset ${JSON.stringify(charset)}, which twinwall does not read`);
  if (ct.type.startsWith('multipart/')) throw new Error(`${where} is itself multi-part, which twinwall does not read`);
  // The line break before a boundary belongs to the boundary.
  const raw = lines.slice(blank + 1).join('\n');
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  let payload: string;
  if (cte === '7bit' || cte === '8bit') {
    // Python's email parser garbles non-ASCII text in such a part (U+0080–U+00FF become lone
    // surrogates, the rest literal \uXXXX text): cloud-init would not read what is written here.
    if (/[^\x00-\x7f]/.test(raw)) throw new Error(`${where} carries non-ASCII text as ${cte}, which cloud-init (Python's email parser) reads garbled`);
    payload = raw;
  }
  else if (cte === 'base64') {
    const clean = raw.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new Error(`${where} is not valid base64`);
    const bytes = Buffer.from(clean, 'base64');
    payload = bytes.toString('utf8');
    if (!Buffer.from(payload, 'utf8').equals(bytes)) {
      // Binary (gzip, say): its type is the finding; text that is not UTF-8 cannot be read.
      if (ct.type.startsWith('text/')) throw new Error(`${where} is not UTF-8 text`);
      payload = '';
    }
  } else throw new Error(`${where} has Content-Transfer-Encoding ${JSON.stringify(cte)}, which twinwall does not read`);
  let type = ct.type;
  if (['text/plain', 'text/x-not-multipart', PART_TYPES['shell-script']].includes(type)) {
    const head = pythonLstrip(payload).toLowerCase();
    type = SNIFF.find(([prefix]) => head.startsWith(prefix))?.[1] ?? type;
  }
  const name = /(?:^|;)\s*filename="([^"]*)"/.exec(headers.get('content-disposition') ?? '')?.[1];
  return { index, type, ...(name === undefined ? {} : { filename: name }), text: payload };
}

/** Does a parsed cloud-config carry (part of) the host wall: its first-boot load or one of its files? */
function carriesHostWall(cfg: unknown): boolean {
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) return false;
  const c = cfg as Record<string, unknown>;
  const files = Array.isArray(c.write_files) ? c.write_files : [];
  const wallFiles = new Set([...RULES_PATHS[4], ...RULES_PATHS[6], FALLBACK_V4_PATH, FALLBACK_V6_PATH, ...IPSETS_PATHS, NFT_RULES_PATH, NFT_FALLBACK_PATH, LOADER_PATH, FIREWALL_UNIT_PATH]);
  const pathOf = (f: unknown) => (f !== null && typeof f === 'object' && typeof (f as Record<string, unknown>).path === 'string' ? posix.resolve('/', (f as Record<string, unknown>).path as string) : undefined);
  if (files.some((f) => wallFiles.has(pathOf(f) ?? ''))) return true;
  return (Array.isArray(c.bootcmd) ? c.bootcmd : []).flatMap(commandText).some((t) => t.includes(FIRST_BOOT_SEMAPHORE));
}

/**
 * A multi-part user-data: find the host wall's part and read it (readCloudConfigWall), and hold
 * the rest to what twinwall composes (composeUserData): the wall's part is the only one and the
 * first; every later cloud-config part carries twinwall's append merge rule and touches nothing
 * the wall owns (userCloudConfigProblems); shell scripts run after the wall (docs/user-data.md
 * says what they can still do); any other part type is a finding. Never agreement by default.
 */
function readMultipart(text: string, gzipped: boolean): HostWallSource {
  const none = (problems: string[]): HostWallSource => ({ text, gzipped, tables: {}, firstBoot: {}, fallback: {}, ipsets: new Map(), ipsetScript: '', problems });
  let parts: MimePart[];
  try {
    parts = splitMime(text);
  } catch (e) {
    return none([`${(e as Error).message}: twinwall cannot tell what cloud-init would run, so it cannot vouch for the host wall`]);
  }
  const problems: string[] = [];
  const label = (p: MimePart) => `part ${p.index}${p.filename === undefined ? '' : ` (${JSON.stringify(p.filename)})`}`;
  const configs = new Map<number, unknown>();
  for (const p of parts) {
    if (p.type !== PART_TYPES['cloud-config']) continue;
    try {
      configs.set(p.index, parseYaml(p.text, { version: '1.1' }));
    } catch (e) {
      problems.push(`${label(p)} is not valid YAML (${(e as Error).message.split('\n')[0]}): cloud-init skips it with a warning, and twinwall cannot tell what it holds`);
    }
  }
  const walls = parts.filter((p) => configs.has(p.index) && carriesHostWall(configs.get(p.index)));
  if (walls.length === 0) return none([...problems, 'no part of the multi-part user-data carries the host wall (no first-boot load, no rules files): the host ships no host wall']);
  const wall = walls[0];
  if (walls.length > 1) problems.push(`${walls.length} parts carry the host wall (${walls.map(label).join(', ')}): twinwall composes exactly one, and a later one changes what the first installed`);
  if (wall.index !== 1) problems.push(`the host wall's part is ${label(wall)}, not the first: cloud-init merges and runs the parts before it first, so the wall is not what decides`);
  for (const p of parts) {
    if (p === wall) continue;
    if (p.type === PART_TYPES['shell-script']) continue;
    if (p.type !== PART_TYPES['cloud-config']) {
      problems.push(`${label(p)} is ${p.type}, which twinwall does not compose (cloud-config and shell scripts only): a boothook runs before the wall, an include or archive brings in parts twinwall cannot see, a JSON patch or part handler changes the merged config`);
      continue;
    }
    if (!configs.has(p.index) || p.index < wall.index) continue;
    for (const q of userCloudConfigProblems(configs.get(p.index), true)) problems.push(`${label(p)} ${q.where}: ${q.problem}`);
  }
  const inner = readCloudConfigWall(pythonLstrip(wall.text), gzipped);
  return { ...inner, text, problems: [...problems, ...inner.problems] };
}

/** Read the host wall out of one #cloud-config document (the whole user-data, or its wall's part). */
function readCloudConfigWall(text: string, gzipped: boolean): HostWallSource {
  const problems: string[] = [];
  const tables: Partial<Record<Family, { path: string; text: string }>> = {};
  const firstBoot: Partial<Record<Family, string>> = {};
  const fallback: Partial<Record<Family, { path: string; text: string }>> = {};
  const firstBootFallback: Partial<Record<Family, string>> = {};
  if (!text.startsWith('#cloud-config')) {
    problems.push('the user-data is not a #cloud-config document, so it ships no host wall twinwall can read');
    return { text, gzipped, tables, firstBoot, fallback, ipsets: new Map(), ipsetScript: '', problems };
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { version: '1.1' });
  } catch (e) {
    problems.push(`the #cloud-config is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    return { text, gzipped, tables, firstBoot, fallback, ipsets: new Map(), ipsetScript: '', problems };
  }
  const cfg = (doc !== null && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const writeFiles = Array.isArray(cfg.write_files) ? (cfg.write_files as Record<string, unknown>[]) : [];
  const otherTexts: string[] = [];
  const budget: Budget = { left: USER_DATA_DECODED_MAX };
  let persistentSets: string | undefined;
  let bootSets: string | undefined;
  let nft: { path: string; text: string } | undefined;
  let nftFallback: string | undefined;
  let nftBoot: string | undefined;
  let nftBootFallback: string | undefined;
  for (const f of writeFiles) {
    if (f === null || typeof f !== 'object') continue;
    const path = typeof f.path === 'string' ? f.path : '';
    let content: string;
    try {
      content = decodeContent(f.content ?? '', f.encoding, budget, 'its content');
    } catch (e) {
      problems.push(`write_files ${path}: ${(e as Error).message}`);
      continue;
    }
    const family = FAMILIES.find((fam) => RULES_PATHS[fam].includes(path));
    const fallbackFamily = FAMILIES.find((fam) => FALLBACK_PATHS[fam] === path);
    if (IPSETS_PATHS.includes(path)) persistentSets = content;
    else if (fallbackFamily !== undefined) fallback[fallbackFamily] = { path, text: content };
    else if (path === NFT_RULES_PATH) {
      if (nft !== undefined) problems.push(`write_files writes ${path} twice`);
      if (f.append === true) problems.push(`write_files appends to ${path} instead of writing it`);
      nft = { path, text: content };
    } else if (path === NFT_FALLBACK_PATH) nftFallback = content;
    else if (family !== undefined) {
      if (tables[family] !== undefined) problems.push(`write_files writes the IPv${family} rules twice (${tables[family]?.path} and ${path})`);
      if (f.append === true) problems.push(`write_files appends to ${path} instead of writing it`);
      tables[family] = { path, text: content };
    } else otherTexts.push(content);
  }
  const scripts = [...(Array.isArray(cfg.bootcmd) ? cfg.bootcmd : [])].flatMap(commandText);
  const later = [...(Array.isArray(cfg.runcmd) ? cfg.runcmd : [])].flatMap(commandText);
  for (const s of scripts) {
    for (const h of heredocs(s)) {
      if (/(^|[\s;&|(])(\S*\/)?nft\s/.test(h.command) && (h.delimiter === NFT_HEREDOC.rules || h.delimiter.startsWith(`${NFT_HEREDOC.rules}_`))) {
        if (nftBoot !== undefined) problems.push('bootcmd loads the nftables wall twice');
        nftBoot = h.body;
        continue;
      }
      if (/(^|[\s;&|(])(\S*\/)?nft\s/.test(h.command) && (h.delimiter === NFT_HEREDOC.fallback || h.delimiter.startsWith(`${NFT_HEREDOC.fallback}_`))) {
        nftBootFallback = h.body;
        continue;
      }
      const family: Family | undefined = /\bip6tables-restore\b/.test(h.command) ? 6 : /\biptables-restore\b/.test(h.command) ? 4 : undefined;
      // twinwall's loader: the fallbacks, and the DROP-only table a failed fallback leaves.
      if (family !== undefined && isDelimiter(h.delimiter, HEREDOC.fallback[family])) {
        firstBootFallback[family] = h.body;
        continue;
      }
      if (family !== undefined && isDelimiter(h.delimiter, HEREDOC.dropOnly)) continue;
      if (family === undefined) {
        if (/\bipset\b/.test(h.command)) bootSets = h.body;
        else otherTexts.push(h.body);
        continue;
      }
      if (firstBoot[family] !== undefined) problems.push(`bootcmd loads IPv${family} rules twice`);
      firstBoot[family] = h.body;
    }
  }
  if (nft === undefined && nftBoot !== undefined) {
    problems.push(`the nftables wall is only in bootcmd (first boot), not in write_files ${NFT_RULES_PATH}: later boots load no host wall`);
    nft = { path: 'bootcmd (first boot)', text: nftBoot };
  } else if (nft !== undefined && nftBoot === undefined) {
    problems.push(`bootcmd carries no copy of the nftables wall (${nft.path}): on first boot the host runs without its wall until the next boot`);
  } else if (nft !== undefined && nftBoot !== undefined && nftBoot !== nft.text) {
    problems.push(`bootcmd's first-boot copy of the nftables wall differs from ${nft.path} (${firstDifference(nftBoot, nft.text)})`);
  }
  if (nftFallback !== undefined && nftBootFallback !== undefined && nftFallback !== nftBootFallback) {
    problems.push(`bootcmd's first-boot copy of the nftables fallback differs from ${NFT_FALLBACK_PATH} (${firstDifference(nftBootFallback, nftFallback)})`);
  } else if ((nftFallback === undefined) !== (nftBootFallback === undefined)) {
    problems.push(nftFallback === undefined ? `the nftables fallback is only in bootcmd (first boot), not in write_files ${NFT_FALLBACK_PATH}` : 'bootcmd carries no copy of the nftables fallback: the first boot loads none');
  }
  if (nft !== undefined) {
    const iptables = FAMILIES.filter((fam) => tables[fam] !== undefined || firstBoot[fam] !== undefined);
    if (iptables.length > 0) {
      problems.push(`the user-data ships an nftables wall (${nft.path}) and iptables tables (${iptables.map((fam) => tables[fam]?.path ?? 'bootcmd').join(', ')}): twinwall renders one backend per host, and which one holds depends on the order they load`);
    }
    const fallback = nftFallback ?? nftBootFallback;
    const sets = [...(setsTextOf(persistentSets, bootSets) !== undefined ? [setsTextOf(persistentSets, bootSets) as string] : []), ...otherTexts];
    const scriptCommands = [...scripts, ...later].map((s) => heredocs(s).reduce((acc, h) => acc.replace(h.body, ''), s));
    const nftables = { path: nft.path, text: nft.text, ...(fallback !== undefined ? { fallback } : {}) };
    const one = { path: nft.path, text: nft.text };
    const fallbackFile = { path: nftFallback !== undefined ? NFT_FALLBACK_PATH : 'bootcmd (first boot)', text: fallback ?? '' };
    return {
      text,
      gzipped,
      tables: { 4: one, 6: one },
      firstBoot: nftBoot !== undefined ? { 4: nftBoot, 6: nftBoot } : {},
      fallback: fallback !== undefined ? { 4: fallbackFile, 6: fallbackFile } : {},
      nftables,
      ipsets: parseIpsets([...sets, ...scriptCommands]),
      ipsetScript: ipsetScript([...sets, ...scriptCommands]),
      problems,
    };
  }
  for (const fam of FAMILIES) {
    const name = `IPv${fam}`;
    const persistent = tables[fam];
    const boot = firstBoot[fam];
    if (persistent === undefined && boot === undefined) {
      const kept = fallback[fam];
      problems.push(`the user-data ships no ${name} table (no write_files ${RULES_PATHS[fam][0]}, no bootcmd copy): ${kept !== undefined ? `the host keeps ${name}'s fallback (${kept.path}), which admits admin ingress, DHCP and neighbour discovery only` : `${name} is unfiltered on the host`}`);
    } else if (persistent === undefined) {
      problems.push(`the ${name} table is only in bootcmd (first boot), not in write_files ${RULES_PATHS[fam][0]}: later boots load no ${name} rules`);
      tables[fam] = { path: `bootcmd (first boot)`, text: boot as string };
    } else if (boot === undefined) {
      problems.push(`bootcmd carries no copy of the ${name} table: on first boot the host runs without its ${name} wall until the next boot`);
    } else if (boot !== persistent.text) {
      problems.push(`bootcmd's first-boot copy of the ${name} table differs from ${persistent.path} (${firstDifference(boot, persistent.text)})`);
    }
  }
  for (const fam of [4, 6] as Family[]) {
    const persistent = fallback[fam];
    const boot = firstBootFallback[fam];
    if (persistent === undefined && boot !== undefined) problems.push(`the IPv${fam} fallback is only in bootcmd (first boot), not in write_files ${FALLBACK_PATHS[fam]}: later boots load no fallback`);
    else if (persistent !== undefined && boot === undefined) problems.push(`bootcmd carries no copy of the IPv${fam} fallback (${persistent.path}): the first boot loads none`);
    else if (persistent !== undefined && boot !== undefined && persistent.text !== boot) {
      problems.push(`bootcmd's first-boot copy of the IPv${fam} fallback differs from ${persistent.path} (${firstDifference(boot, persistent.text)})`);
    }
  }
  if (persistentSets !== undefined && bootSets !== undefined && persistentSets !== bootSets) {
    problems.push(`bootcmd's first-boot copy of the ipsets differs from ${IPSETS_PATHS[0]} (${firstDifference(bootSets, persistentSets)})`);
  } else if (persistentSets === undefined && bootSets !== undefined) {
    problems.push(`the ipsets are only in bootcmd (first boot), not in write_files ${IPSETS_PATHS[0]}: later boots have no sets`);
  }
  const setsText = persistentSets ?? bootSets;
  // Scripts are scanned for ipset commands too, but not the heredoc bodies already read above.
  const scriptCommands = [...scripts, ...later].map((s) => heredocs(s).reduce((acc, h) => acc.replace(h.body, ''), s));
  const sources = [...(setsText !== undefined ? [setsText] : []), ...otherTexts, ...scriptCommands];
  return { text, gzipped, tables, firstBoot, fallback, ipsets: parseIpsets(sources), ipsetScript: ipsetScript(sources), problems };
}
