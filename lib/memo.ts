/**
 * A small bounded cache for work that depends on a few plain inputs only and repeats across the
 * hosts of a fleet: a host wall's base chains depend on instanceMetadata and the subnets, not on
 * the roles (lib/render/nftables.ts); a rule line read by the checker depends on its text and
 * its table's context, not on the host (lib/check/iptables-parse.ts). A synth renders, and a
 * check reads, each host once, mostly in code the JavaScript engine has not optimised yet, so
 * making each value once per distinct input saves that work on every other host. What is
 * remembered must be a pure function of the key, and immutable (strings, frozen or readonly
 * data). At most `max` keys are kept, the oldest dropped first.
 */
export class Memo<T> {
  private readonly values = new Map<string, T>();

  public constructor(private readonly max: number = 64) {}

  /** The value for `key`, made by `make` the first time (or again after it was dropped). */
  public get(key: string, make: () => T): T {
    const known = this.values.get(key);
    if (known !== undefined) return known;
    const value = make();
    if (this.values.size >= this.max) this.values.delete(this.values.keys().next().value as string);
    this.values.set(key, value);
    return value;
  }
}
