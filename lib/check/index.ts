/**
 * The consistency checker behind `twinwall check`, `explain` and `verify`: pure functions from
 * synthesized artefacts (parsed Terraform JSON, user-data text) to exact models of both walls and
 * their differences. No cdktf, no I/O.
 */
export * from './space';
export * from './addresses';
export * from './iptables-parse';
export * from './ipset';
export * from './nft-parse';
export * from './user-data';
export * from './record';
export * from './terraform';
export * from './terraform-shape';
export * from './host-model';
export * from './host-only';
export * from './network-model';
export * from './describe';
export * from './compare';
export * from './explain';
export * from './probes';
export * from './fleet';
