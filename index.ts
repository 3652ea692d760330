/**
 * The `twinwall` package entry, for cdktf users: the constructs, and the vocabulary hosts are
 * written with (roles, peers, ports, CIDRs, policies, the error type).
 *
 *   import { FilteredHost, Peer, mailServer, sshAdmin } from 'twinwall';
 *
 * Loading it loads cdktf, constructs and @cdktf/provider-aws (peer dependencies). The pure core,
 * which never loads them, is the `twinwall/core` entry (lib/index.ts). Both entries export the
 * same objects (one copy of each module), so a Peer or TwinwallError from one is the same class
 * as from the other. docs/architecture.md ("Packaging") says why the package has these two.
 */
export * from './constructs';
export * from './lib/errors';
export * from './lib/address';
export * from './lib/port';
export * from './lib/peer';
export * from './lib/flow';
export * from './lib/catalog';
export * from './lib/roles';
export * from './lib/policy';
export { formatHostSummary } from './lib/summary';
