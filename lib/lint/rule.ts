/**
 * What a lint rule is: its catalog row (stable id, name, level, title, fix, references) and its
 * check, in one object, one file per rule under rules/ (the way cdk-nag writes its rules). The
 * engine (engine.ts) runs every rule of the registry (rules/index.ts) over a host; the catalog
 * (catalog.ts) and docs/lint.md are read from the same rows.
 */
import { LintSubject } from './model';

/**
 * Levels: an `error` fails `cdktf synth` (as an error Annotation) and makes `twinwall report`
 * exit 1; a `warning` is shown but fails nothing; a `notice` records a deliberate decision a
 * reviewer should see (port-scoped egress to anywhere that a role justifies, with its reason).
 */
export type LintLevel = 'error' | 'warning' | 'notice';

/** Every lint id (stable; never renumbered or reused). */
export type LintId = 'TWL001' | 'TWL002' | 'TWL003' | 'TWL004' | 'TWL005' | 'TWL006' | 'TWL007' | 'TWL008' | 'TWL009' | 'TWL010' | 'TWL011';

export interface LintRuleInfo {
  /** Stable id, e.g. "TWL001". */
  readonly id: string;
  /** Stable kebab-case name, e.g. "egress-all-to-anywhere". */
  readonly name: string;
  readonly level: LintLevel;
  /** One line: what the check finds. */
  readonly title: string;
  /** How to fix it (or how to record that it is intended). */
  readonly fix: string;
  /** The same check in other scanners, for readers who know those. */
  readonly references: readonly string[];
}

/** One finding a check reports, before the engine adds the rule's row and the host. */
export interface LintDraft {
  /** The rule resource, group or host the finding is about. */
  readonly location: string;
  /** One sentence naming the traffic and why it is a finding. */
  readonly message: string;
}

/** A lint rule: its catalog row and the check that finds it. */
export interface LintRule extends LintRuleInfo {
  readonly id: LintId;
  /** The findings over one host; may throw (the engine turns that into a finding). */
  readonly check: (subject: LintSubject) => readonly LintDraft[];
}
