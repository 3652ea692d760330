/**
 * Text for a terminal. Names, tags, comments and log lines come from artefacts and logs an
 * attacker may have written; printed raw, an ESC sequence recolours or rewrites the screen, a
 * carriage return or backspace overwrites what was printed before it ("the walls agree" over a
 * finding), and a bidi override reverses what the reader sees. This module is the one owner of
 * which characters those are and how they are shown: as a visible escape (`\x1b`, `\r`,
 * `\u202e`), so the reader sees that they were there. lib/markdown.ts uses the same table.
 */

/**
 * C0 controls (but tab and line feed), DEL, C1 controls, and the Unicode bidirectional
 * controls (LRM, RLM, ALM, LRE … RLO, LRI … PDI).
 */
export const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\r': '\\r', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\u0000': '\\0' };

/**
 * A control character as visible text: `\r`, `\x1b` (C0), `\u0085`, `\u202e` (DEL and above:
 * the form that is also a JSON escape, so JSON output stays valid).
 */
export function showControl(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code < 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` safe to write to a terminal: every control character (see CONTROL_CHARACTERS) shown as
 * a visible escape; line feeds and tabs kept. JSON stays valid JSON: JSON.stringify already
 * escapes C0 controls, and the others only occur inside strings, where `\u202e` is a JSON escape
 * of the same character.
 */
export function terminalText(text: string): string {
  return text.replace(CONTROL_CHARACTERS, showControl);
}

/** One line for a terminal: as terminalText, and line feeds and tabs shown too. */
export function terminalLine(text: string): string {
  return terminalText(text).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}
