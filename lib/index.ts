/** twinwall's pure core: no cdktf, no constructs, no provider bindings. */
export * from './errors';
export * from './tokens';
export * from './address';
export * from './port';
export * from './peer';
export * from './flow';
export * from './catalog';
export * from './roles';
export * from './policy';
export * from './role-table';
export * from './render';
export * from './summary';
export * from './intervals';
