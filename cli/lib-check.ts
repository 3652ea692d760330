/** What the CLI uses from the pure core (one import site, so the CLI never pulls in cdktf). */
export * from '../lib/check';
export type { Direction } from '../lib/flow';
