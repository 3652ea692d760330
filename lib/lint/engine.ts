/**
 * The lint engine: every rule of the registry (rules/, one file per rule) over a LintSubject
 * (model.ts). Pure and deterministic: the same subject gives
 * the same findings in the same order. Suppressed findings are kept, marked with their reason, so
 * reports show them; they only stop counting as errors or warnings.
 */
import { LintSubject } from './model';
import { LintId, LintLevel, LintRule } from './rule';
import { LINT_REGISTRY } from './rules';

export interface LintFinding {
  readonly id: LintId;
  readonly name: string;
  readonly level: LintLevel;
  readonly stack?: string;
  readonly host: string;
  /** The rule resource, group or host the finding is about. */
  readonly location: string;
  /** One sentence naming the traffic and why it is a finding. */
  readonly message: string;
  readonly fix: string;
  readonly references: readonly string[];
  /** Present when the host suppresses this id: the reason it gave. */
  readonly suppressed?: { readonly reason: string };
}

type Draft = { readonly rule: LintRule; readonly location: string; readonly message: string };

/**
 * One rule's findings. A check that throws (a bug, or input it cannot read) is a finding saying
 * the host could not be checked for that id, at its level — never a crashed synth or report, and
 * never silence that reads as "nothing found".
 */
function run(rule: LintRule, subject: LintSubject): Draft[] {
  try {
    return rule.check(subject).map((d) => ({ rule, location: d.location, message: d.message }));
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return [
      {
        rule,
        location: subject.location,
        message: `this host could not be checked for ${rule.id}: the check failed (${why}); this is a bug in twinwall, please report it, and review the host for ${rule.id} by hand until it is fixed.`,
      },
    ];
  }
}

/**
 * Run every rule of the registry (or `rules`) over one host. Findings are sorted by id, then
 * location, then message.
 */
export function lintHost(subject: LintSubject, rules: readonly LintRule[] = LINT_REGISTRY): LintFinding[] {
  const suppressed = new Map(subject.suppressions.map((s) => [s.id, s.reason]));
  const drafts = rules.flatMap((rule) => run(rule, subject));
  const seen = new Set<string>();
  const out: LintFinding[] = [];
  for (const d of drafts) {
    const info = d.rule;
    const key = `${info.id}|${d.location}|${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const reason = suppressed.get(info.id);
    out.push({
      id: info.id,
      name: info.name,
      level: info.level,
      ...(subject.stack !== undefined ? { stack: subject.stack } : {}),
      host: subject.host,
      location: d.location,
      message: d.message,
      fix: info.fix,
      references: info.references,
      ...(reason !== undefined ? { suppressed: { reason } } : {}),
    });
  }
  return out.sort(compareFindings);
}

export function compareFindings(a: LintFinding, b: LintFinding): number {
  const keys: [string | number, string | number][] = [
    [a.stack ?? '', b.stack ?? ''],
    [a.host, b.host],
    [a.id, b.id],
    [a.location, b.location],
    [a.message, b.message],
  ];
  for (const [x, y] of keys) if (x !== y) return x < y ? -1 : 1;
  return 0;
}

/** Findings that still count (not suppressed) at `level`. */
export function active(findings: readonly LintFinding[], level?: LintLevel): LintFinding[] {
  return findings.filter((f) => f.suppressed === undefined && (level === undefined || f.level === level));
}

/** The one-line form used in Annotations and plain-text output. */
export function formatFinding(f: LintFinding): string {
  const head = `${f.id} ${f.name} (${f.level}) at ${f.location}: ${f.message}`;
  if (f.suppressed !== undefined) return `${head} Suppressed: ${f.suppressed.reason}`;
  return `${head} Fix: ${f.fix}`;
}
