/** The TwinwallError `fn` throws; fails the test when it throws nothing or something else. */
import { TwinwallError } from '../../lib';

export function caught(fn: () => unknown): TwinwallError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TwinwallError) return e;
    throw new Error(`expected a TwinwallError, got ${String(e)}`);
  }
  throw new Error('expected a TwinwallError, nothing was thrown');
}
