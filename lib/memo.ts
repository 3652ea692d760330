/**
 * A small bounded cache for the parts of a rendering that depend on a few plain inputs only (a
 * host wall's base chains depend on instanceMetadata and the subnets, not on the roles): most
 * hosts of a fleet share them, and a synth renders each host once, mostly in code the JavaScript
 * engine has not optimised yet, so making them once per distinct input saves that work on every
 * other host. The renderers are pure, so a remembered value is the value; values must be
 * immutable (strings, frozen arrays). At most `max` keys are kept, the oldest dropped first.
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
