/**
 * Markdown for pull-request comments. GitHub refuses comments of 65,536 characters or more, so
 * every renderer here works to a budget: the summary and the findings come first, then the
 * details host by host; when the budget runs out the rest is left out with a note naming what
 * was cut and how to see it (the JSON output, or the CI artefact). Escaping is lib/markdown.ts's.
 */

/** GitHub's limit on a comment body, in characters. */
export const GITHUB_COMMENT_LIMIT = 65536;

/** What the renderers aim at by default: the limit, less room for a workflow's own header. */
export const DEFAULT_MARKDOWN_BUDGET = 60000;

/**
 * Assemble sections under a budget: `fixed` always goes in (cut hard only if it alone is too
 * long), then each optional section while it fits. Returns the text and the titles of the
 * sections left out, which `note` turns into the closing note.
 */
export function fitSections(fixed: readonly string[], optional: readonly { title: string; text: string }[], budget: number, note: (omitted: readonly string[]) => string): string {
  const parts: string[] = [];
  let used = 0;
  const room = (n: number) => used + n + 2 <= budget;
  const reserve = note(optional.map((o) => o.title)).length + 4;
  for (const f of fixed) {
    if (!room(f.length + reserve)) {
      const cut = Math.max(0, budget - used - reserve - 80);
      parts.push(`${f.slice(0, cut).replace(/\n[^\n]*$/, '')}\n\n_… cut: this section alone is longer than a pull-request comment allows._`);
      used = budget;
      break;
    }
    parts.push(f);
    used += f.length + 2;
  }
  const omitted: string[] = [];
  for (const o of optional) {
    if (omitted.length === 0 && room(o.text.length + reserve)) {
      parts.push(o.text);
      used += o.text.length + 2;
    } else omitted.push(o.title);
  }
  if (omitted.length > 0) parts.push(note(omitted));
  const text = `${parts.join('\n\n')}\n`;
  return text.length < GITHUB_COMMENT_LIMIT ? text : `${text.slice(0, GITHUB_COMMENT_LIMIT - 200)}\n\n_… cut at GitHub's comment limit._\n`;
}
