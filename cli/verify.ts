/**
 * `twinwall verify`: the kernel as the judge. For each host, a fresh pair of network namespaces
 * (cli/netns.ts): the host's ipsets, each family's fallback and then its iptables-restore table
 * (the loader's order at boot) are loaded into the "host" one,
 * the "peer" one owns every remote address probed, and real TCP and UDP connections (plus raw
 * packets with forged sources) go both ways over the veth pair between them. Each kernel verdict
 * is compared with the security groups' (lib/check/probes.ts plans the probes and the expected
 * verdicts), and with what the checker's model predicted. Before any packet, the tables the
 * kernel stored (iptables-save after loading) must mean what the checker read in the artefact (a
 * difference is a finding). No packet leaves the two namespaces.
 */
import { execFileSync } from 'child_process';
import { CheckReport, HostCheck, IptDocument, NFT_READ_TABLE, NftablesWall, PlannedProbe, documentDifference, nftSetsDifference, parseIptablesRestore, parseNftables, planProbes } from './lib-check';
import { Agent, NetnsLab, Probe, ProbeResult, cleanUpOnSignals } from './netns';

/** How long verify waits at most for the sniffer to report raw packets that left their socket. */
const SNIFF_WAIT_MS = 2000;

export interface VerifyOptions {
  readonly timeoutMs: number;
  readonly verbose: boolean;
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

export interface HostVerification {
  readonly label: string;
  readonly probes: number;
  readonly byKind: Record<string, number>;
  /** Kernel verdict differs from the security groups' (or from the documented exception). */
  readonly disagreements: readonly string[];
  /** Kernel verdict differs from what the checker's model predicted. */
  readonly modelMismatches: readonly string[];
  /** Tables the kernel refused to load, and similar. */
  readonly problems: readonly string[];
  /** The kernel's verdict per probe id: admitted or not, or why the probe failed. */
  readonly verdicts: ReadonlyMap<string, boolean | string>;
  readonly ms: number;
}

/** Loads a host wall into the lab's host namespace; returns what the kernel refused. */
export type WallLoader = (lab: NetnsLab) => string[];

/**
 * The host wall as the user-data carries it: the ipsets, then per family its fallback (which the
 * kernel must take and store as the checker read it) and its iptables-restore table over it; or
 * the nftables file (loadNftablesWall).
 */
export function loadUserDataWall(check: HostCheck): WallLoader {
  const nft = check.wall.nftables;
  if (nft !== undefined) return loadNftablesWall(nft.text, { check, path: nft.path });
  return (lab) => {
    const problems: string[] = [];
    if (check.wall.ipsetScript !== '') {
      try {
        lab.exec('host', ['ipset', 'restore', '-exist'], check.wall.ipsetScript);
      } catch (e) {
        problems.push(`the kernel refuses the ipsets in the user-data: ${firstLine(e)}`);
      }
    }
    for (const family of [4, 6] as const) {
      const [restore, save] = family === 4 ? ['iptables-restore', 'iptables-save'] : ['ip6tables-restore', 'ip6tables-save'];
      // The fallback first, as the loader puts it in place at boot (onLoadFailure lockdown): the
      // kernel must take it and store what the checker read; the real table then replaces it.
      const fb = check.wall.fallback[family];
      if (fb !== undefined) {
        try {
          lab.exec('host', [restore], fb.text);
          const mine = parseIptablesRestore(fb.text, family);
          const stored = parseIptablesRestore(lab.exec('host', [save]), family);
          const difference = mine.problems.length > 0 || stored.problems.length > 0 ? 'the checker cannot read it exactly' : documentDifference(mine, stored);
          if (difference !== undefined) problems.push(`the kernel stored ${fb.path} differently from the checker's reading of it: ${difference}`);
        } catch (e) {
          problems.push(`the kernel refuses ${fb.path} (${restore}): ${firstLine(e)}; at boot a failing table would leave IPv${family} without its fallback`);
        }
      }
      const t = check.wall.tables[family];
      if (t === undefined) continue; // nothing loaded: the kernel accepts everything, as the model says
      try {
        lab.exec('host', [restore], t.text);
      } catch (e) {
        problems.push(`the kernel refuses ${t.path} (${restore}): ${firstLine(e)}`);
        continue;
      }
      // What the kernel stored, read back, must mean what the checker read in the artefact.
      const mine = check.documents[family];
      if (mine === undefined || mine.problems.length > 0) {
        problems.push(`the kernel loaded ${t.path}, which the checker cannot read exactly (see twinwall check)`);
        continue;
      }
      const ipsets = new Map([...check.wall.ipsets.values()].map((d) => [d.name, d.family] as const));
      const stored = parseIptablesRestore(lab.exec('host', [save]), family, { ipsets });
      const difference = stored.problems.length > 0 ? `the checker cannot read what ${save} printed (line ${stored.problems[0].line}: ${stored.problems[0].message})` : documentDifference(mine, stored);
      if (difference !== undefined) problems.push(`the kernel stored ${t.path} differently from the checker's reading of it: ${difference}`);
    }
    return problems;
  };
}

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Why verify cannot run here, or undefined. `backends`: the host walls it will load (default iptables). */
export function verifyPrerequisites(backends: { iptables: boolean; nftables: boolean } = { iptables: true, nftables: false }): string | undefined {
  if (process.platform !== 'linux') return `verify needs Linux network namespaces (this is ${process.platform})`;
  if (process.getuid === undefined || process.getuid() !== 0) return 'verify needs root: it creates network namespaces and loads the host walls into them (run it with sudo)';
  const tools = ['ip', ...(backends.iptables ? ['iptables-restore', 'ip6tables-restore'] : []), ...(backends.nftables ? ['nft'] : []), 'python3'];
  const missing = tools.filter((c) => !onPath(c));
  if (missing.length > 0) return `verify needs ${missing.join(', ')} on PATH (Debian: apt-get install iproute2 ${backends.iptables ? 'iptables ' : ''}${backends.nftables ? 'nftables ' : ''}python3)`;
  return undefined;
}

function firstLine(e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string };
  const text = err.stderr !== undefined && String(err.stderr).trim() !== '' ? String(err.stderr) : (err.message ?? String(e));
  return text.trim().split('\n')[0];
}

function describeProbe(p: PlannedProbe): string {
  const toFrom = p.direction === 'ingress' ? 'from' : 'to';
  const how = p.how === 'forged' ? ` with forged source ${p.forgedSource}` : p.how === 'real-raw' ? ' (raw packet, the host\'s own source)' : '';
  const who = p.uid !== undefined ? ` as uid ${p.uid}` : '';
  return `${p.direction} ${p.protocol}/${p.port} ${toFrom} ${p.remote}${how}${who}`;
}

function admittedBy(p: PlannedProbe, r: ProbeResult | undefined, peer: Agent): boolean | string {
  if (r === undefined) return 'no result';
  if (p.how !== 'socket') return peer.saw(r.token).some((e) => e.ev === 'sniff');
  switch (r.outcome) {
    case 'ok':
    case 'refused': // an RST or port-unreachable means the first packet got through the wall
      return true;
    case 'timeout':
    case 'eperm':
      return false;
    default:
      return r.outcome;
  }
}

/** Run every host of the report through the kernel. Returns the exit code. */
export async function runVerify(report: CheckReport, options: VerifyOptions): Promise<number> {
  const nft = report.hosts.some((h) => h.wall.nftables !== undefined);
  const why = verifyPrerequisites({ iptables: report.hosts.some((h) => h.wall.nftables === undefined), nftables: nft });
  if (why !== undefined) {
    options.err(`twinwall verify: ${why}\n`);
    return 2;
  }
  cleanUpOnSignals((sig) => options.err(`twinwall verify: ${sig}: removing the namespaces\n`));
  let findings = 0;
  for (const h of report.hosts) {
    const v = await verifyHost(h, options);
    const kinds = Object.entries(v.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    const bad = v.disagreements.length + v.modelMismatches.length + v.problems.length;
    findings += bad;
    options.out(`${v.label}: ${v.probes} probes (${kinds}): ${v.probes - v.disagreements.length} agree with the security groups, ${v.disagreements.length} disagree [${v.ms} ms]\n`);
    for (const p of v.problems) options.out(`  ${v.label}: ${p}\n`);
    for (const d of v.disagreements) options.out(`  ${v.label}: ${d}\n`);
    for (const m of v.modelMismatches) options.out(`  ${v.label}: checker model wrong: ${m}\n`);
  }
  options.out(findings === 0 ? `twinwall verify: ${report.hosts.length} host(s), the kernel agrees with the security groups on every probe\n` : `twinwall verify: ${findings} finding(s)\n`);
  return findings === 0 ? 0 : 1;
}

/**
 * An nftables host wall (lib/render/nftables.ts): one `nft -f` transaction, after its fallback
 * (the check's wall.nftables.fallback) as the loader does at boot. What the kernel stored of each
 * (`nft -n list table inet twinwall`, read back with the checker's own reader) must mean what the
 * checker read in the artefact, both families and the sets, as for iptables-save.
 */
export function loadNftablesWall(text: string, read?: { check: HostCheck; path: string }): WallLoader {
  return (lab) => {
    const problems: string[] = [];
    // As the loader does at boot: the fallback first (the kernel must take it and store what the
    // checker read, as for iptables), then the wall replaces it in one transaction.
    const fallback = read?.check.wall.nftables?.fallback;
    if (fallback !== undefined) {
      const where = read?.check.wall.fallback[4]?.path ?? 'the nftables fallback';
      try {
        lab.exec('host', ['nft', '-f', '-'], fallback);
      } catch (e) {
        return [`the kernel refuses the nftables fallback ${where} (nft -f): ${firstLine(e)}; at boot a wall that fails to load would leave the host without its fallback`];
      }
      const mine = parseNftables(fallback);
      problems.push(...storedDifferently(lab, mine, mine.documents, where));
    }
    try {
      lab.exec('host', ['nft', '-f', '-'], text);
    } catch (e) {
      return [...problems, `the kernel refuses the nftables wall${read !== undefined ? ` ${read.path}` : ''} (nft -f): ${firstLine(e)}`];
    }
    if (read === undefined) return problems;
    const mine = parseNftables(text);
    const docs = read.check.documents;
    if (mine.problems.length > 0 || docs[4] === undefined || docs[6] === undefined || docs[4].problems.length > 0 || docs[6].problems.length > 0) {
      return [...problems, `the kernel loaded ${read.path}, which the checker cannot read exactly (see twinwall check)`];
    }
    return [...problems, ...storedDifferently(lab, mine, { 4: docs[4], 6: docs[6] }, read.path)];
  };
}

/**
 * What the kernel stored of table inet twinwall (`nft -n list table`, read back with the
 * checker's reader) against the checker's reading `docs` of `mine` (the file loaded from `where`):
 * a difference in either family or in the sets is a finding, as is a file or listing the checker
 * cannot read.
 */
function storedDifferently(lab: NetnsLab, mine: NftablesWall, docs: Record<4 | 6, IptDocument>, where: string): string[] {
  if (mine.problems.length > 0) return [`the kernel loaded ${where}, which the checker cannot read exactly (line ${mine.problems[0].line}: ${mine.problems[0].message})`];
  const stored = parseNftables(lab.exec('host', ['nft', '-n', 'list', 'table', NFT_READ_TABLE.family, NFT_READ_TABLE.name]), { form: 'listing' });
  if (stored.problems.length > 0) return [`the checker cannot read what nft list printed for ${where} (line ${stored.problems[0].line}: ${stored.problems[0].message})`];
  const problems: string[] = [];
  for (const family of [4, 6] as const) {
    const difference = documentDifference(docs[family], stored.documents[family]);
    if (difference !== undefined) problems.push(`the kernel stored ${where} (IPv${family}) differently from the checker's reading of it: ${difference}`);
  }
  const sets = nftSetsDifference(mine, stored);
  if (sets !== undefined) problems.push(`the kernel stored ${where} differently from the checker's reading of it: ${sets}`);
  return problems;
}

/**
 * Verify one host in its own namespaces. `loadWall` puts the host wall in place (default: the
 * user-data's ipsets and tables); the probes and their expected verdicts come from `check` alone.
 */
export async function verifyHost(check: HostCheck, options: Pick<VerifyOptions, 'timeoutMs' | 'verbose' | 'out'>, loadWall: WallLoader = loadUserDataWall(check)): Promise<HostVerification> {
  const t0 = Date.now();
  const plan = planProbes(check);
  const problems: string[] = [];
  const probes = plan.probes;
  const lab = await NetnsLab.create({
    host: { addresses: [`${plan.host4}/32`, `${plan.host6}/128`], routes: [['-4', 'default', 'dev', '%dev'], ['-6', 'default', 'dev', '%dev']] },
    peer: {
      addresses: [...plan.peerAddresses[4].map((a) => `${a}/32`), ...plan.peerAddresses[6].map((a) => `${a}/128`)],
      routes: [['-4', `${plan.host4}/32`, 'dev', '%dev'], ['-6', `${plan.host6}/128`, 'dev', '%dev']],
    },
  });
  try {
    const socket = (d: 'ingress' | 'egress', proto: 'tcp' | 'udp') => probes.filter((p) => p.how === 'socket' && p.direction === d && p.protocol === proto);
    const hostAgent = await lab.startAgent('host', {
      tcp: [...new Set(socket('ingress', 'tcp').map((p) => p.port))],
      udp: [...new Map(socket('ingress', 'udp').map((p) => [`${p.family}|${p.port}`, [p.family === 4 ? plan.host4 : plan.host6, p.port] as const])).values()],
    });
    const peerAgent = await lab.startAgent('peer', {
      tcp: [...new Set(socket('egress', 'tcp').map((p) => p.port))],
      udp: [...new Map(socket('egress', 'udp').map((p) => [`${p.remote}|${p.port}`, [p.remote, p.port] as const])).values()],
      sniff: true,
    });
    void hostAgent;
    problems.push(...loadWall(lab));
    const toProbe = (p: PlannedProbe): Probe => {
      if (p.how === 'socket') {
        if (p.direction === 'ingress') return { id: p.id, kind: p.protocol, dst: p.family === 4 ? plan.host4 : plan.host6, port: p.port, src: p.remote };
        return { id: p.id, kind: p.protocol, dst: p.remote, port: p.port };
      }
      const own = p.family === 4 ? plan.host4 : plan.host6;
      return { id: p.id, kind: 'raw', proto: p.protocol, src: p.how === 'forged' ? (p.forgedSource as string) : own, dst: p.remote, port: p.port };
    };
    const ingress = probes.filter((p) => p.direction === 'ingress');
    const egressRoot = probes.filter((p) => p.direction === 'egress' && p.uid === undefined);
    const byUid = new Map<number, PlannedProbe[]>();
    for (const p of probes) if (p.direction === 'egress' && p.uid !== undefined) byUid.set(p.uid, [...(byUid.get(p.uid) ?? []), p]);
    const batches = await Promise.all([
      lab.probe('peer', ingress.map(toProbe), { timeoutMs: options.timeoutMs }),
      lab.probe('host', egressRoot.map(toProbe), { timeoutMs: options.timeoutMs }),
      ...[...byUid].map(([uid, list]) => lab.probe('host', list.map(toProbe), { timeoutMs: options.timeoutMs, uid })),
    ]);
    const results = new Map<string, ProbeResult>();
    for (const b of batches) for (const [k, v] of b) results.set(k, v);
    // The last echoes and sniffed frames: a raw packet that left the socket is judged by whether
    // the peer's sniffer saw it, which on a loaded machine can take longer than the echoes do.
    const sent = [...results.values()].filter((r) => r.outcome === 'sent');
    const deadline = Date.now() + SNIFF_WAIT_MS;
    do await new Promise((r) => setTimeout(r, 200));
    while (Date.now() < deadline && sent.some((r) => !peerAgent.saw(r.token).some((e) => e.ev === 'sniff')));
    const disagreements: string[] = [];
    const modelMismatches: string[] = [];
    const byKind: Record<string, number> = {};
    const verdicts = new Map<string, boolean | string>();
    for (const p of probes) {
      const kind = `${p.direction} ${p.how === 'socket' ? p.protocol : p.how}`;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      const kernel = admittedBy(p, results.get(p.id), peerAgent);
      verdicts.set(p.id, kernel);
      const verdict = (b: boolean) => (b ? 'admits' : 'drops');
      if (typeof kernel === 'string') {
        disagreements.push(`${describeProbe(p)}: the probe failed (${kernel})`);
        continue;
      }
      if (options.verbose) options.out(`  ${check.label}: ${describeProbe(p)}: kernel ${verdict(kernel)}; expected ${verdict(p.expected)} (${p.basis})\n`);
      if (kernel !== p.expected) disagreements.push(`${describeProbe(p)}: the kernel ${verdict(kernel)} it, the security groups ${p.basis.startsWith('documented') || p.how !== 'socket' ? `(${p.basis}) say it ${p.expected ? 'is admitted' : 'is dropped'}` : `${verdict(p.expected)} it (${p.basis})`}`);
      if (kernel !== p.model) modelMismatches.push(`${describeProbe(p)}: the kernel ${verdict(kernel)} it, the model predicted it ${verdict(p.model)} it`);
    }
    return { label: check.label, probes: probes.length, byKind, disagreements, modelMismatches, problems, verdicts, ms: Date.now() - t0 };
  } finally {
    lab.destroy();
  }
}
