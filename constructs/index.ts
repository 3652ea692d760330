/** cdktf adapters over the pure core in lib/. */
export * from './filtered-host';
