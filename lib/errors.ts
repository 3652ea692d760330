/**
 * The one error type of twinwall. Every failure carries a stable code (safe to match on in
 * scripts and tests), the offending value, and the fix, so a synth failure reads like a review
 * comment rather than a stack trace.
 */
import { basename, dirname, join, sep } from 'path';
import { terminalText } from './terminal';

/** Stable error codes. Never renumber or rename one: users match on them. */
export const ERROR_CODES = {
  /** A CIDR was given without a prefix length ("10.0.0.5"). */
  CIDR_NO_MASK: 'TW101',
  /** A CIDR has bits set to the right of its prefix ("10.0.0.5/24"). */
  CIDR_HOST_BITS: 'TW102',
  /** Text that is not an IPv4 or IPv6 address at all. */
  CIDR_INVALID: 'TW103',
  /** IPv6 where IPv4 was expected, or the reverse (also ICMP vs ICMPv6). */
  FAMILY_MISMATCH: 'TW104',
  /** A port outside 0–65535, or not an integer. */
  PORT_OUT_OF_RANGE: 'TW111',
  /** A port range whose start is above its end. */
  PORT_RANGE_REVERSED: 'TW112',
  /** An ICMP type or code outside 0–255. */
  ICMP_OUT_OF_RANGE: 'TW113',
  /** TCP or UDP port 0 alone: no service listens on it, and security groups read 0-0 oddly. */
  PORT_ZERO: 'TW114',
  /** A role with no flows. */
  ROLE_EMPTY: 'TW121',
  /** Two roles with the same name composed into one host. */
  ROLE_DUPLICATE: 'TW122',
  /** A role or host name that is not a short identifier. */
  NAME_INVALID: 'TW123',
  /** A flow without a reason. */
  REASON_MISSING: 'TW124',
  /** A security-group reference without the CIDRs the host wall needs. */
  SG_NO_HOST_CIDR: 'TW131',
  /** One security group referenced with two different host-side CIDR lists. */
  SG_HOST_CIDR_CONFLICT: 'TW132',
  /** A managed prefix list without its CIDRs. */
  PREFIX_LIST_EMPTY: 'TW133',
  /** One prefix list id declared with two different CIDR lists. */
  PREFIX_LIST_CONFLICT: 'TW134',
  /** A Terraform token (unresolved at synth) where a literal is needed. */
  UNRESOLVED_TOKEN: 'TW141',
  /** A list that must not be empty is empty (admin networks, resolvers, clients …). */
  PEERS_EMPTY: 'TW151',
  /** SSH administration opened to the whole Internet without an explicit override. */
  SSH_FROM_ANYWHERE: 'TW152',
  /** A recursive resolver that would answer the whole Internet. */
  OPEN_RESOLVER: 'TW153',
  /** A service name that is not in the catalog. */
  UNKNOWN_SERVICE: 'TW154',
  /** An option value that is not one of the accepted values. */
  OPTION_INVALID: 'TW161',
  /** One security group would hold more than 60 rules in one direction for one address family. */
  SG_QUOTA_EXCEEDED: 'TW221',
  /** A security-group or prefix-list peer labelled only by a Terraform token: no stable rule id. */
  SG_PEER_UNLABELLED: 'TW222',
  /** Two security-group rules would get the same construct id (two peers with one label). */
  SG_RULE_ID_COLLISION: 'TW223',
  /** The user-data exceeds EC2's 16,384 bytes even gzip-compressed. */
  USER_DATA_TOO_LARGE: 'TW224',
  /** A user tag sets a `twinwall:` key, which only twinwall writes (the checker and diff read them). */
  TAG_RESERVED: 'TW225',
  /** The network wall needs more than 5 security groups, or more than 1,000 rules, on one network interface. */
  ENI_QUOTA_EXCEEDED: 'TW261',
  /** A prefix list's maxEntries is below its entry count, above 1,000, or given for a list of both families. */
  PREFIX_LIST_MAX_ENTRIES: 'TW262',
  /** A lint suppression without a written reason (the report shows the reason). */
  LINT_SUPPRESSION_NO_REASON: 'TW251',
  /** A lint suppression naming an id that is not in the lint catalog. */
  LINT_UNKNOWN_ID: 'TW252',
  /** One lint id suppressed twice on the same host. */
  LINT_SUPPRESSION_DUPLICATE: 'TW253',
  /** `twinwall learn` was given no log to read. */
  LEARN_NO_INPUT: 'TW271',
  /** A VPC Flow Logs format (header line or --flow-log-format) that learn cannot use. */
  FLOW_LOG_FORMAT_INVALID: 'TW272',
  /** A table name or time for `learn --query` that cannot be put in a query (it is never passed on as typed). */
  QUERY_OPTION_INVALID: 'TW273',
  /** A synthesized Terraform JSON document holds a value of the wrong JSON type (null, an array where an object belongs …). */
  ARTEFACT_SHAPE: 'TW291',
  /** A grant between hosts names a host that declares no addresses, so the other host's wall could not match it. */
  GRANT_NO_ADDRESSES: 'TW226',
  /** A grant added to a host whose policy is already final (read, or synthesized). */
  HOST_FINAL: 'TW227',
  /** A grant whose other end is not a FilteredHost of the same stack, or whose ports are not a service or Port. */
  GRANT_INVALID: 'TW228',
  /** A twinwall security group on an instance or launch template that lacks the host's user-data, or carries it as `user_data`. */
  HOST_WALL_NOT_ATTACHED: 'TW229',
  /** Two hosts with the same name in one stack (check, report and explain could not tell them apart). */
  HOST_NAME_DUPLICATE: 'TW230',
  /**
   * A user-data part of the user's own that could switch the host wall off or that twinwall cannot
   * compose: a part type other than cloud-config or a shell script, cloud-init's module lists or
   * merge rules, write_files over a path the host wall owns, text that is not YAML.
   */
  USER_DATA_PART_INVALID: 'TW231',
} as const;

export type ErrorName = keyof typeof ERROR_CODES;
export type ErrorCode = (typeof ERROR_CODES)[ErrorName];

export interface TwinwallErrorDetails {
  /** What was wrong, naming the bad value. */
  readonly problem: string;
  /** How to fix it. */
  readonly fix: string;
  /** The offending value, as the user wrote it. */
  readonly value?: unknown;
  /** Where it happened (construct path, role name, …), outermost first. */
  readonly path?: readonly string[];
}

/**
 * Set to "1" to see every stack frame of a TwinwallError, and the stack trace of the CLI's
 * internal errors. Without it a TwinwallError's stack holds one frame: the caller's own code.
 */
export const DEBUG_VARIABLE = 'TWINWALL_DEBUG';

function debugging(): boolean {
  return typeof process !== 'undefined' && process.env?.[DEBUG_VARIABLE] === '1';
}

/** twinwall's own code: lib/, constructs/ and the package entry, in the sources or in dist/. */
const OWN_ROOT = dirname(__dirname);
const OWN_FOLDERS = [join(OWN_ROOT, 'lib') + sep, join(OWN_ROOT, 'constructs') + sep];

function isOwnFile(file: string): boolean {
  return OWN_FOLDERS.some((folder) => file.startsWith(folder)) || (dirname(file) === OWN_ROOT && /^index\.[jt]s$/.test(basename(file)));
}

/**
 * The first stack frame in the caller's code (not twinwall's, not Node's, not a package's):
 * where the bad value was written. An error thrown before any construct exists (a role built
 * inline, `Peer.ipv4("10.0.0.5/24")` in the props) has no construct path; this line is its
 * location.
 */
export function callerFrame(stack: string | undefined): string | undefined {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = /^\s*at (?:.*? \()?(.+?):\d+:\d+\)?$/.exec(line);
    if (m === null) continue;
    const file = m[1];
    if (file.startsWith('node:') || file.includes(`${sep}node_modules${sep}`) || isOwnFile(file)) continue;
    return line;
  }
  return undefined;
}

/**
 * twinwall's single error class. `code` is stable (TWnnn), `name` is the symbolic name
 * (e.g. CIDR_HOST_BITS). The message has the shape
 * `TW102 CIDR_HOST_BITS at web/sshAdmin: "10.0.0.5/24" has host bits set … Fix: …`.
 *
 * Printed as an uncaught exception (a failed `cdktf synth`), it shows that message once and the
 * caller's line, not pages of frames: the details below are not enumerable (so Node does not
 * print them again after the message), and the stack keeps only the caller's frame unless
 * TWINWALL_DEBUG=1.
 */
export class TwinwallError extends Error {
  public declare readonly code: ErrorCode;
  public declare readonly errorName: ErrorName;
  public declare readonly problem: string;
  public declare readonly fix: string;
  public declare readonly value: unknown;
  public declare readonly path: readonly string[];

  public constructor(name: ErrorName, details: TwinwallErrorDetails) {
    const path = details.path ?? [];
    super(TwinwallError.format(name, details.problem, details.fix, path));
    this.name = 'TwinwallError';
    const fields = { code: ERROR_CODES[name], errorName: name, problem: details.problem, fix: details.fix, value: details.value, path };
    for (const [key, value] of Object.entries(fields)) Object.defineProperty(this, key, { value, enumerable: false, writable: false, configurable: false });
    if (!debugging()) {
      const frame = callerFrame(this.stack);
      const stack = `${this.name}: ${this.message}${frame !== undefined ? `\n${frame}` : ''}\n    (${DEBUG_VARIABLE}=1 shows every frame)`;
      Object.defineProperty(this, 'stack', { value: stack, enumerable: false, writable: true, configurable: true });
    }
  }

  /** The same error, located under `segment` (e.g. the construct path or role name). */
  public within(segment: string): TwinwallError {
    return this.at([segment, ...this.path]);
  }

  /** The same error with its location replaced by `path`. */
  public at(path: readonly string[]): TwinwallError {
    return new TwinwallError(this.errorName, {
      problem: this.problem,
      fix: this.fix,
      value: this.value,
      path,
    });
  }

  private static format(name: ErrorName, problem: string, fix: string, path: readonly string[]): string {
    const where = path.length > 0 ? ` at ${terminalText(path.join('/'))}` : '';
    return `${ERROR_CODES[name]} ${name}${where}: ${problem} Fix: ${fix}`;
  }
}

/**
 * Quote a user value for a message: strings in double quotes, everything else as JSON. Control
 * characters come out as escapes (JSON's, and lib/terminal.ts's for the ones JSON leaves raw),
 * so a message is one line a terminal prints as it reads.
 */
export function show(value: unknown): string {
  if (typeof value === 'string') return terminalText(JSON.stringify(value));
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return 'undefined';
  try {
    return terminalText(JSON.stringify(value) ?? String(value));
  } catch {
    return terminalText(String(value));
  }
}

/**
 * Run `fn`, and if it throws a TwinwallError, rethrow it located under `segment`.
 * Used to attach role names and construct paths to errors raised deep in the core. When the
 * error's path already starts with `replacing` (a host name that `segment`, a construct path,
 * names too), that first element is replaced rather than repeated: "at oops/h/sshAdmin", never
 * "at oops/h/h/sshAdmin".
 */
export function locate<T>(segment: string, fn: () => T, options: { readonly replacing?: string } = {}): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof TwinwallError)) throw e;
    const inner = options.replacing !== undefined && e.path[0] === options.replacing ? e.path.slice(1) : e.path;
    throw e.at([segment, ...inner]);
  }
}
