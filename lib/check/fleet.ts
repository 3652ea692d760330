/**
 * `twinwall check` over a fleet, in flat memory. `checkStacks` keeps every host's whole check
 * (its parsed tables, both walls' models, every region and path), which grows by most of a
 * megabyte a host; what `check` prints needs only each host's verdict — its identity, its
 * findings and the exceptions applied, as lines — and the report's last line only counts. So a
 * fleet is checked one host at a time, each check is reduced to its verdict, and the verdict is
 * written (`CheckReportWriter`) before the next host is judged: peak memory is the parsed input
 * plus one host's working set, whatever the number of hosts. The planned hosts wait for their
 * turn packed (`packHost`): plain data, their bytes mostly outside the JavaScript heap, so the
 * heap the checks work in (and the garbage V8 lets it collect before it looks) stays the size
 * of one host's check.
 *
 * The same reduction runs on worker threads (cli/check-workers.ts): a packed host goes to a
 * worker (a structured clone copies it exactly), the worker checks it and sends back the
 * verdict, and the verdicts are written in plan order.
 * Which hosts, in which order, is decided before any is judged (`planFleet`), so the report is
 * the same whoever judged each host.
 */
import { Finding, FleetPlan, HostCheck, checkHost } from './compare';
import { parseCidrLenient } from './addresses';
import { CidrPeer, HostArtefact, SgPeer, SgRule } from './terraform';

/** What the report keeps of one host: enough to print it and count its findings. */
export interface HostVerdict {
  readonly host: Pick<HostArtefact, 'stack' | 'name' | 'address'>;
  /** "staging/sample". */
  readonly label: string;
  readonly findings: readonly Pick<Finding, 'kind' | 'text'>[];
  /** The exceptions applied, one line each. */
  readonly exceptions: readonly string[];
  readonly ms: number;
}

/** A check report as the text reads it (a `CheckReport` is one too). */
export interface CheckSummary {
  readonly hosts: readonly HostVerdict[];
  /** Problems with the input as a whole (no stacks, a stack without hosts). */
  readonly problems: readonly string[];
}

/** One host's check reduced to its verdict. */
export function verdictOf(check: HostCheck | HostVerdict): HostVerdict {
  return {
    host: { stack: check.host.stack, name: check.host.name, address: check.host.address },
    label: check.label,
    findings: check.findings.map((f) => ({ kind: f.kind, text: f.text })),
    exceptions: [...check.exceptions],
    ms: check.ms,
  };
}

/**
 * The text of `twinwall check`, written piece by piece as the hosts are judged: the problems of
 * the input first, then each host's block (its verdict line, its findings, and with `verbose`
 * the exceptions applied), then one line that sums up. The writer keeps counts only.
 */
export class CheckReportWriter {
  private hosts = 0;
  private hostsWithFindings = 0;
  private findings = 0;
  private readonly problems: number;

  public constructor(
    problems: readonly string[],
    private readonly write: (text: string) => void,
    private readonly options: { readonly verbose?: boolean } = {},
  ) {
    this.problems = problems.length;
    if (problems.length > 0) write(problems.map((p) => `twinwall check: ${p}\n`).join(''));
  }

  public host(h: HostVerdict): void {
    const n = h.findings.length;
    const out = [`${h.label} (${h.host.address}): ${n === 0 ? 'the walls agree' : `${n} finding${n === 1 ? '' : 's'}`} [${h.ms} ms]`];
    for (const f of h.findings) out.push(`  ${h.label}: ${f.kind === 'artefact' ? 'host wall artefact: ' : ''}${f.text}`);
    if (this.options.verbose !== false) for (const e of h.exceptions) out.push(`  exception applied: ${e}`);
    this.hosts++;
    this.findings += n;
    if (n > 0) this.hostsWithFindings++;
    this.write(`${out.join('\n')}\n`);
  }

  /** Write the last line; true when the check found anything (exit 1). */
  public end(): boolean {
    this.write(
      this.findings === 0 && this.problems === 0
        ? `twinwall check: ${this.hosts} host(s), the walls agree (exceptions listed above)\n`
        : `twinwall check: ${this.findings} finding(s) on ${this.hostsWithFindings} of ${this.hosts} host(s)\n`,
    );
    return this.findings > 0 || this.problems > 0;
  }
}

/** The report as text: per host, its findings and the exceptions applied. */
export function formatReport(report: CheckSummary, options: { verbose?: boolean } = {}): string {
  let text = '';
  const writer = new CheckReportWriter(report.problems, (t) => (text += t), options);
  for (const h of report.hosts) writer.host(h);
  writer.end();
  return text;
}

/** Did the check find anything? */
export function hasFindings(report: CheckSummary): boolean {
  return report.problems.length > 0 || report.hosts.some((h) => h.findings.length > 0);
}

/**
 * Check the planned hosts one at a time, in this thread, handing each verdict to `sink` in plan
 * order before the next host is judged; nothing of a host outlives its turn but what `sink`
 * keeps.
 */
export function checkFleet(plan: PackedPlan, sink: (verdict: HostVerdict) => void): void {
  for (const h of plan.hosts) sink(verdictOf(checkHost(unpackHost(h))));
}

// ---------------------------------------------------------------------------------------------
// A host's artefact packed: what the check keeps of each planned host until its turn, and what
// a worker thread receives. Packed is plain data (a structured clone copies it exactly) and
// compact: a CIDR is its canonical text (unpacking reads it back with the same parser, which
// gives the same interval and the same text: parseCidrLenient is idempotent on its own output),
// and the user-data, most of a host's bytes, is held in a byte buffer outside the JavaScript heap,
// byte for byte the string it was (Latin-1 when every code unit fits in a byte, else UTF-16), so
// the heap a fleet check works in does not grow with the fleet.

type PackedCidr = Omit<CidrPeer, 'set'>;
type PackedPeer = PackedCidr | (Omit<Exclude<SgPeer, CidrPeer>, 'cidrs'> & { readonly cidrs?: readonly PackedCidr[] });
type PackedRule = Omit<SgRule, 'peer'> & { readonly peer?: PackedPeer };
/** A string as bytes: Latin-1 when every UTF-16 code unit is below 256, else UTF-16LE (lossless either way). */
interface PackedText {
  readonly bytes: Uint8Array;
  readonly wide: boolean;
}

/** A host's artefact, packed (see above). */
export type PackedHost = Omit<HostArtefact, 'rules' | 'vpc' | 'userData'> & {
  readonly rules: readonly PackedRule[];
  readonly vpc?: { readonly ref: string; readonly cidrs: readonly PackedCidr[] };
  readonly userData?: { readonly base64?: PackedText; readonly plain?: PackedText };
};

/** A fleet plan with every host packed. */
export interface PackedPlan {
  readonly hosts: readonly PackedHost[];
  readonly problems: readonly string[];
}

function packText(s: string): PackedText {
  const wide = /[^\u0000-\u00ff]/.test(s);
  const b = Buffer.from(s, wide ? 'utf16le' : 'latin1');
  return { bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), wide };
}

function unpackText(t: PackedText): string {
  return Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength).toString(t.wide ? 'utf16le' : 'latin1');
}

function packCidr(c: CidrPeer): PackedCidr {
  return { kind: c.kind, family: c.family, text: c.text };
}

function unpackCidr(c: PackedCidr): CidrPeer {
  const parsed = parseCidrLenient(c.text);
  if (parsed.family !== c.family || parsed.text !== c.text) throw new Error(`the packed CIDR ${c.text} does not read back as itself`);
  return { kind: 'cidr', family: c.family, set: parsed.set, text: c.text };
}

function packPeer(p: SgPeer): PackedPeer {
  if (p.kind === 'cidr') return packCidr(p);
  return p.cidrs === undefined ? p : { ...p, cidrs: p.cidrs.map(packCidr) };
}

function unpackPeer(p: PackedPeer): SgPeer {
  if (p.kind === 'cidr') return unpackCidr(p);
  return p.cidrs === undefined ? (p as SgPeer) : { ...p, cidrs: p.cidrs.map(unpackCidr) };
}

export function packHost(h: HostArtefact): PackedHost {
  const { vpc, userData, ...rest } = h;
  return {
    ...rest,
    rules: h.rules.map((r) => (r.peer === undefined ? r : { ...r, peer: packPeer(r.peer) })),
    ...(vpc !== undefined ? { vpc: { ref: vpc.ref, cidrs: vpc.cidrs.map(packCidr) } } : {}),
    ...(userData !== undefined ? { userData: { ...(userData.base64 !== undefined ? { base64: packText(userData.base64) } : {}), ...(userData.plain !== undefined ? { plain: packText(userData.plain) } : {}) } } : {}),
  };
}

export function unpackHost(p: PackedHost): HostArtefact {
  const { vpc, userData, ...rest } = p;
  return {
    ...rest,
    rules: p.rules.map((r): SgRule => (r.peer === undefined ? (r as SgRule) : { ...r, peer: unpackPeer(r.peer) })),
    ...(vpc !== undefined ? { vpc: { ref: vpc.ref, cidrs: vpc.cidrs.map(unpackCidr) } } : {}),
    ...(userData !== undefined ? { userData: { ...(userData.base64 !== undefined ? { base64: unpackText(userData.base64) } : {}), ...(userData.plain !== undefined ? { plain: unpackText(userData.plain) } : {}) } } : {}),
  };
}

/** Pack every host of a plan (the unpacked plan can then be dropped). */
export function packPlan(plan: FleetPlan): PackedPlan {
  return { hosts: plan.hosts.map(packHost), problems: plan.problems };
}
