/**
 * The two-namespace lab now lives in cli/netns.ts, where `twinwall verify` uses it too; the
 * kernel tests import it from here as before.
 */
export * from '../../cli/netns';
