/**
 * The lint catalog: every check twinwall runs over a host's walls, with a stable id, a level and
 * a fix, read from the rules themselves (rules/, one file per rule: its row and its check in one
 * place). Ids are never renumbered or reused (users write them in suppressions and CI filters);
 * a retired check keeps its row, marked retired, rather than freeing its id.
 *
 * Any finding can be suppressed per host, only with a written reason, which the report shows.
 */
import { LINT_REGISTRY } from './rules';
import { LintId, LintRuleInfo } from './rule';

export type { LintId, LintLevel, LintRuleInfo } from './rule';
export { WORM_PORTS } from './rules';

/** The catalog row of a rule: everything but its check. */
function rowOf(rule: (typeof LINT_REGISTRY)[number]): LintRuleInfo {
  const { id, name, level, title, fix, references } = rule;
  return Object.freeze({ id, name, level, title, fix, references });
}

/** Every lint rule's row, by id. */
export const LINT_RULES: Readonly<Record<LintId, LintRuleInfo>> = Object.freeze(Object.fromEntries(LINT_REGISTRY.map((r) => [r.id, rowOf(r)])) as Record<LintId, LintRuleInfo>);

/** Every lint id, in order. */
export const LINT_IDS: readonly LintId[] = LINT_REGISTRY.map((r) => r.id);

export function isLintId(id: unknown): id is LintId {
  return typeof id === 'string' && Object.prototype.hasOwnProperty.call(LINT_RULES, id);
}

/** Look a rule up by id or by name ("TWL001" or "egress-all-to-anywhere"). */
export function lintRule(idOrName: string): LintRuleInfo | undefined {
  if (isLintId(idOrName)) return LINT_RULES[idOrName];
  return LINT_IDS.map((id) => LINT_RULES[id]).find((r) => r.name === idOrName);
}

/** The rule table of docs/lint.md, from the same rows (`npm run docs` writes it; a test compares). */
export function lintTableMarkdown(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = LINT_IDS.map((id) => LINT_RULES[id]).map((r) => `| \`${r.id}\` | ${r.name} | ${r.level} | ${cell(r.title)} | ${r.references.length === 0 ? '—' : cell(r.references.join(', '))} |`);
  return ['| id | name | level | finds | same as |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}
