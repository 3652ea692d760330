/** Commands cli/main.ts registers besides check, explain and verify. */
export { registerReport } from './report';
export { registerDiff } from './diff';
export { registerLearn } from './learn';
export type { CommandIo } from './io';
