/**
 * The one Markdown escaping module. Every string that comes from a user or a log (host names,
 * tags, rule descriptions and comments, reasons, role names, lint messages, logged host names
 * and lines) goes through one of these functions where it lands in Markdown — report, diff and
 * learn output, which CI posts as pull-request comments — so input can add no raw HTML, heading,
 * list, quote, link, image, @mention, issue reference, math, emphasis, table cell or line break,
 * cannot close a code span or fence, and cannot break a Mermaid diagram.
 *
 * - `mdText`: inline text, one line, safe in a table cell and at the start of a line.
 * - `mdCode`: an inline code span, one line, safe in a table cell.
 * - `mdFence`: a fenced code block whose fence no line of the body can close.
 * - `mermaidLabel`: text for a quoted Mermaid node or edge label.
 * - `mdTable`: a GFM table of cells already escaped by the above.
 *
 * Control characters are shown as visible escapes (lib/terminal.ts owns which they are).
 */
import { CONTROL_CHARACTERS, showControl } from './terminal';

/** One control character (the global CONTROL_CHARACTERS, without its state). */
const CONTROL = new RegExp(CONTROL_CHARACTERS.source);

/** Line breaks of every kind, and tabs: inline text is one line. */
const BREAKS = /[\r\n\t\u0085\u2028\u2029]+/g;

/** Invisible, so GitHub's @mention and #reference autolinking cannot match across it. */
const WORD_JOINER = '\u2060';

/**
 * Characters escaped with a backslash (CommonMark escapes any ASCII punctuation): the escape
 * itself, code spans, emphasis and strikethrough, links, images and footnotes, table pipes,
 * headings, math.
 */
const BACKSLASHED = /[\\`*_~[\]|#$]/;
const ENTITIES: Readonly<Record<string, string>> = { '<': '&lt;', '>': '&gt;', '&': '&amp;' };

function inline(text: string): string {
  let out = '';
  const s = text.replace(BREAKS, ' ');
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (CONTROL.test(ch)) {
      out += `\\${showControl(ch)}`; // "\\x1b": a backslash shown, then "x1b"
      continue;
    }
    const entity = ENTITIES[ch];
    if (entity !== undefined) out += entity;
    else if (BACKSLASHED.test(ch)) out += `\\${ch}`;
    else out += ch;
    // No @mention, e-mail autolink or #123 reference: an invisible joiner after the sign.
    if (ch === '@' || (ch === '#' && /[0-9]/.test(s[i + 1] ?? ''))) out += WORD_JOINER;
    // No bare-URL autolink: "https\://", "www\.".
    if (ch === ':' && s.startsWith('//', i + 1)) out = `${out.slice(0, -1)}\\:`;
    if (ch === '.' && /(^|[^A-Za-z0-9])www$/i.test(s.slice(Math.max(0, i - 4), i))) out = `${out.slice(0, -1)}\\.`;
  }
  return out;
}

/**
 * Inline Markdown text: one line (breaks become spaces), trimmed, every construct neutralised
 * (see the module comment). Safe in a table cell, in a heading and at the start of a line
 * (a leading list, quote or numbered-list marker is escaped).
 */
export function mdText(text: string): string {
  const out = inline(String(text).trim());
  // Block markers count only at the start of a line: "- x", "+ x", "1. x", "1) x", "---", "===".
  return out.replace(/^([-+=])(?=\s|$|\1)/, '\\$1').replace(/^(\d{1,9})([.)])(?=\s|$)/, '$1\\$2');
}

/** Inline code: one line, no backtick (it would close the span), pipes escaped for tables. */
export function mdCode(text: string): string {
  const body = String(text)
    .replace(BREAKS, ' ')
    .replace(CONTROL_CHARACTERS, showControl)
    .replace(/`/g, "'")
    .replace(/\|/g, '\\|');
  return `\`${body}\``;
}

/**
 * A fenced code block of `body`: the fence is longer than any run of backticks in the body, so
 * no line of it can close the block; control characters are shown as escapes.
 */
export function mdFence(lang: string, body: string): string {
  const text = String(body).replace(/\r\n?/g, '\n').replace(CONTROL_CHARACTERS, showControl);
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  const info = lang.replace(/[^A-Za-z0-9_+-]/g, '');
  return `${fence}${info}\n${text.replace(/\n$/, '')}\n${fence}`;
}

/**
 * Text for a quoted Mermaid label (`n1["…"]`, `-->|"…"|`): one line, none of the characters that
 * end a label or an edge, start an entity or HTML, or could close the fence around the diagram.
 */
export function mermaidLabel(text: string): string {
  return String(text)
    .replace(CONTROL_CHARACTERS, ' ')
    .replace(/["`]/g, "'")
    .replace(/[<>]/g, ' ')
    .replace(/\|/g, '/')
    .replace(/[#&;]/g, ' ')
    .replace(/[\s\u0085\u2028\u2029]+/g, ' ')
    .trim();
}

/** A GFM table. Cells must already be escaped (mdText, mdCode) or be twinwall's own text. */
export function mdTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const head = `| ${headers.join(' | ')} |`;
  const rule = `|${headers.map(() => '---').join('|')}|`;
  return [head, rule, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
