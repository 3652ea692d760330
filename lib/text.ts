/**
 * Text fitted to where it lands in AWS: the one owner of the character sets and lengths of
 * security-group rule descriptions and tag values, and of how text is cut to fit. (iptables and
 * nftables comments are lib/render/iptables.ts's `commentText`; Markdown and terminal escaping
 * are lib/markdown.ts's and lib/terminal.ts's.)
 */

/** AWS: a tag value holds at most 256 characters. */
export const TAG_VALUE_MAX = 256;

/** AWS: a security-group rule description holds at most 255 characters. */
export const SG_DESCRIPTION_MAX_LENGTH = 255;

/** Every character AWS accepts in a security-group rule description. */
export const SG_DESCRIPTION_CHARSET = /^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]*$/;

/** `text` cut to at most `max` characters, the cut marked with "..." (trailing space dropped before it unless `keepSpace`). */
export function cutText(text: string, max: number, keepSpace = false): string {
  if (text.length <= max) return text;
  const kept = text.slice(0, max - 3);
  return `${keepSpace ? kept : kept.trimEnd()}...`;
}

interface Charset {
  /** Matches (globally) every character the target does not take; each becomes a space. */
  readonly notAllowed: RegExp;
  readonly max: number;
  /** Replacements applied first, in order. */
  readonly replace?: readonly (readonly [RegExp, string])[];
}

/** Text in a target's characters: accents dropped (NFKD), replacements made, the rest a space, spaces folded, cut to fit. */
function fitted(text: string, charset: Charset): string {
  let t = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  for (const [from, to] of charset.replace ?? []) t = t.replace(from, to);
  return cutText(t.replace(charset.notAllowed, ' ').replace(/\s+/g, ' ').trim(), charset.max);
}

const DESCRIPTION: Charset = {
  notAllowed: /[^a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]/g,
  max: SG_DESCRIPTION_MAX_LENGTH,
  // Dashes become "-", quotes go; braces become parentheses, so a description can never hold a
  // Terraform template sequence ("${…}", "%{…}").
  replace: [
    [/[\u2010-\u2015\u2212]/g, '-'],
    [/[\u2018\u2019\u201a\u201b\u201c\u201d\u201e'"`]/g, ''],
    [/\{/g, '('],
    [/\}/g, ')'],
  ],
};

/** Characters every AWS service accepts in a tag value. */
const TAG_VALUE: Charset = { notAllowed: /[^A-Za-z0-9 +\-=._:/@]/g, max: TAG_VALUE_MAX };

/** Text in the characters AWS accepts in a security-group rule description, at most 255 of them. */
export function awsDescription(text: string): string {
  return fitted(text, DESCRIPTION);
}

/**
 * Text in the characters every AWS service accepts in a tag value (letters, digits, spaces,
 * `+ - = . _ : / @`), at most 256 of them. Other characters become spaces.
 */
export function tagSafe(text: string): string {
  return fitted(text, TAG_VALUE);
}
