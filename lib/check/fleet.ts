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
import { Finding, FleetPlan, HostCheck, StackInput, checkHost, planStacks } from './compare';
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
  for (let i = 0; i < plan.size; i++) sink(verdictOf(checkHost(plan.host(i))));
}

// ---------------------------------------------------------------------------------------------
// A host's artefact packed: what the check keeps of each planned host until its turn, and what a
// worker thread receives. Packed is bytes: the host's plain data in V8's serialization format
// (node:v8 `serialize`, the structured clone's own format, so strings stay byte for byte what they
// were: Latin-1 when every code unit fits in a byte, else UTF-16), with each CIDR as its canonical
// text (unpacking reads it back with the same parser, which gives the same interval and the same
// text: parseCidrLenient is idempotent on its own output). A plan keeps every host's bytes in a
// few large buffers outside the JavaScript heap, so the heap a fleet check works in holds one
// host's check and nothing that grows with the fleet: V8 sizes its heap from what survives a
// collection, and packed hosts waiting in the heap would survive every one.

type PackedCidr = Omit<CidrPeer, 'set'>;
type PackedPeer = PackedCidr | (Omit<Exclude<SgPeer, CidrPeer>, 'cidrs'> & { readonly cidrs?: readonly PackedCidr[] });
type PackedRule = Omit<SgRule, 'peer'> & { readonly peer?: PackedPeer };
/** A host's artefact as plain data (what is serialized). */
type PlainHost = Omit<HostArtefact, 'rules' | 'vpc'> & {
  readonly rules: readonly PackedRule[];
  readonly vpc?: { readonly ref: string; readonly cidrs: readonly PackedCidr[] };
};

/** A host's artefact, packed (see above): bytes only `unpackHost` reads. */
export type PackedHost = Uint8Array;

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

/** A host's artefact as the JSON text of its plain data. */
function packedText(h: HostArtefact): string {
  const { vpc, ...rest } = h;
  const plain: PlainHost = {
    ...rest,
    rules: h.rules.map((r) => (r.peer === undefined ? r : { ...r, peer: packPeer(r.peer) })),
    ...(vpc !== undefined ? { vpc: { ref: vpc.ref, cidrs: vpc.cidrs.map(packCidr) } } : {}),
  };
  return JSON.stringify(plain);
}

export function packHost(h: HostArtefact): PackedHost {
  return new Uint8Array(Buffer.from(packedText(h), 'utf8'));
}

export function unpackHost(bytes: PackedHost): HostArtefact {
  const p = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as PlainHost;
  const { vpc, ...rest } = p;
  return {
    ...rest,
    rules: p.rules.map((r): SgRule => (r.peer === undefined ? (r as SgRule) : { ...r, peer: unpackPeer(r.peer) })),
    ...(vpc !== undefined ? { vpc: { ref: vpc.ref, cidrs: vpc.cidrs.map(unpackCidr) } } : {}),
  };
}

/** How much a plan's buffers grow by (a host packs to a few kilobytes). */
const CHUNK_BYTES = 1 << 20;

/**
 * The hosts a check judges, in report order, each packed, and the problems of the input as a
 * whole. The bytes live in buffers of CHUNK_BYTES (a host larger than that gets a buffer of its
 * own) and a typed-array index, all outside the JavaScript heap: what the plan holds in the heap
 * does not grow with the fleet.
 */
export class PackedPlan {
  /** Pack every host of a planned fleet (the unpacked plan can then be dropped). */
  public static of(plan: FleetPlan): PackedPlan {
    const packed = new PackedPlan();
    for (const h of plan.hosts) packed.add(h);
    packed.problems.push(...plan.problems);
    return packed;
  }

  /**
   * Plan and pack the hosts of `stacks`, one stack at a time (planStacks): with a lazy `stacks`
   * (each parsed when asked), only one stack's parsed input is alive at once. `select` keeps a
   * host (default: every host).
   */
  public static plan(stacks: Iterable<StackInput>, select: (host: HostArtefact) => boolean = () => true): PackedPlan {
    const packed = new PackedPlan();
    packed.problems.push(...planStacks(stacks, (h) => (select(h) ? packed.add(h) : undefined)));
    return packed;
  }

  /** Problems of the input as a whole (no stacks, a stack without hosts). */
  public readonly problems: string[] = [];
  private readonly chunks: Buffer[] = [];
  private used = CHUNK_BYTES;
  /** Per host: chunk, offset, length. */
  private index = new Uint32Array(3 * 64);
  private count = 0;

  private constructor() {}

  /** How many hosts. */
  public get size(): number {
    return this.count;
  }

  private add(h: HostArtefact): void {
    const text = packedText(h);
    const length = Buffer.byteLength(text, 'utf8');
    if (this.used + length > CHUNK_BYTES || this.chunks.length === 0) {
      this.chunks.push(Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, length)));
      this.used = 0;
    }
    this.chunks[this.chunks.length - 1].write(text, this.used, 'utf8');
    if (3 * (this.count + 1) > this.index.length) {
      const grown = new Uint32Array(this.index.length * 2);
      grown.set(this.index);
      this.index = grown;
    }
    this.index.set([this.chunks.length - 1, this.used, length], 3 * this.count++);
    this.used += length;
  }

  private view(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`no host ${i} in a plan of ${this.count}`);
    const [chunk, offset, length] = this.index.subarray(3 * i, 3 * i + 3);
    return this.chunks[chunk].subarray(offset, offset + length);
  }

  /** Host `i`, unpacked. */
  public host(i: number): HostArtefact {
    return unpackHost(this.view(i));
  }

  /** Host `i` packed, in a buffer of its own (to send, or to transfer, to a worker thread). */
  public packed(i: number): PackedHost {
    return new Uint8Array(this.view(i));
  }
}

/** Pack every host of a plan (the unpacked plan can then be dropped). */
export function packPlan(plan: FleetPlan): PackedPlan {
  return PackedPlan.of(plan);
}
