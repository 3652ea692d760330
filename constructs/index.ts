/** cdktf adapters over the pure core in lib/. */
export * from './filtered-host';
export * from './prefix-list';
export * from './lint';
