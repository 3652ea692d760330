/** Lint: stable checks over a host's two walls, from its renderings or from the artefacts. */
export * from './catalog';
export * from './model';
export * from '../provenance';
export * from './suppressions';
export * from './engine';
export * from './from-rendering';
export * from './from-artefacts';
export type { LintDraft, LintRule } from './rule';
export { LINT_REGISTRY } from './rules';
