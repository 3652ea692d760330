/**
 * The host-only part of the host wall, checked against the policy record: for a representative
 * set of hosts (the sample server, audit mode, each metadata mode, the ipset form, declared
 * subnets), synthesized
 * through FilteredHost, every rule outside the policy chains of each family is removed, widened
 * (each address, interface, protocol, match and match option dropped in turn; DROP turned into
 * ACCEPT, a jump to a log-and-drop chain into ACCEPT) or narrowed (ACCEPT into DROP), and every
 * built-in policy flipped — in both copies of the table (write_files and bootcmd), so only the
 * host-only check can tell. Each mutant must give `check` a finding (exit 1) that names the
 * chain. The sample server's rules are widened on the sample server, the others' own rules (audit
 * chains, metadata rules) on them; every rule is removed on every host. Under CI=true every
 * mutant runs; otherwise every fourth (TWINWALL_MUTANTS=all runs all). That covers every rule the
 * renderer writes: DHCP to where a server can be (broadcast, the subnets' routers, DHCPv6's
 * group and link-local), router advertisements and redirects dropped on the way out, loopback
 * sources dropped as forged, audit mode's connmark rules. The fallback is mutated the same way
 * (both copies), except that removing an admin rule is narrower and not a finding (which rules are
 * administration is not recorded); a fallback wider than the real table, missing under lockdown
 * or shipped under open is.
 */
import { Testing } from 'cdktf';
import { FilteredHost } from '../constructs';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CheckReport, HostArtefact, POLICY_CHAINS, checkHost, decodeUserData, hasFindings, parseIptablesRestore, parseRuleLine, readHostWall, readStack, tokenize } from '../lib/check';
import { Json, clone, editTable } from './support/artefacts';
import { ROLE_FIXTURES, sampleServer } from './support/fixtures';
import { Flow, HostPolicy, Peer, Port, customRole, ntpClient, sshAdmin } from '../lib';
import { renderFallbackPart } from '../lib/render';
import { hostWallTags, readHostWallTags } from '../lib/check/record';
import { resolveHostPolicyOptions } from '../lib/policy';

const HOSTS = ['sample', 'sampleAudit', 'metadataNone', 'metadataAllUsers', 'manyAdmins', 'sampleSubnets'] as const;
/** The fixtures here beyond ROLE_FIXTURES: the sample server with declared subnets (DHCP may reach their routers). */
const LOCAL_FIXTURES: Record<string, () => HostPolicy> = { sampleSubnets: () => sampleServer({ subnets: ['10.0.1.0/24', '10.0.2.0/24'] }) };
const EVERY = process.env.CI === 'true' || process.env.TWINWALL_MUTANTS === 'all' ? 1 : 4;

/** The host with the iptables wall (the mutants edit its tables; check-nft.test.ts mutates the nftables wall). */
function synth(fixture: string | HostPolicy): HostArtefact {
  const json = JSON.parse(
    Testing.synthScope((scope) => {
      new FilteredHost(scope, 'h', {
        policy: typeof fixture === 'string' ? (LOCAL_FIXTURES[fixture] ?? ROLE_FIXTURES[fixture])() : fixture,
        hostFirewall: 'iptables',
        vpcId: 'vpc-0123456789abcdef0',
        instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' },
      });
    }),
  );
  const [host] = readStack('mutants', json);
  return host;
}

/** The host with one table line changed in both copies of one family's table ('' removes it). */
function mutate(host: HostArtefact, cfg: Json, family: 4 | 6, line: string, replacement: string): HostArtefact {
  const copy = clone(cfg);
  editTable(copy, family, (t) => {
    const lines = t.split('\n');
    const i = lines.indexOf(line);
    if (i < 0) throw new Error(`no line ${line}`);
    if (replacement === '') lines.splice(i, 1);
    else lines[i] = replacement;
    return lines.join('\n');
  });
  // As user_data_base64, as FilteredHost writes it: the loader's "${1:-start}" would be a Terraform expression in user_data.
  return { ...host, userData: { base64: Buffer.from(`#cloud-config\n${stringifyYaml(copy, { lineWidth: 0, version: '1.1' })}`).toString('base64') } };
}

/** The host with one fallback line changed in both copies: write_files and bootcmd's here-document. */
function mutateFallback(host: HostArtefact, cfg: Json, family: 4 | 6, line: string, replacement: string): HostArtefact {
  const copy = clone(cfg);
  const file = (copy.write_files as Json[]).find((f) => f.path === `/etc/iptables/fallback.v${family}`);
  const before = file.content as string;
  const lines = before.split('\n');
  const i = lines.indexOf(line);
  if (i < 0) throw new Error(`no fallback line ${line}`);
  if (replacement === '') lines.splice(i, 1);
  else lines[i] = replacement;
  const after = lines.join('\n');
  file.content = after;
  const boot = copy.bootcmd[0] as string[];
  const last = boot.length - 1;
  if (!boot[last].includes(`\n${before}TWINWALL_FALLBACK_V${family}\n`)) throw new Error('bootcmd carries no copy of the fallback');
  boot[last] = boot[last].replace(`\n${before}TWINWALL_FALLBACK_V${family}\n`, `\n${after}TWINWALL_FALLBACK_V${family}\n`);
  return { ...host, userData: { base64: Buffer.from(`#cloud-config\n${stringifyYaml(copy, { lineWidth: 0, version: '1.1' })}`).toString('base64') } };
}

interface Mutant {
  readonly what: string;
  readonly chain: string;
  readonly line: string;
  readonly replacement: string;
}

/** Word groups of a rendered rule: [start, end) index ranges of each option with its values. */
function groups(words: readonly string[]): { start: number; end: number; module?: string; kind: 'base' | 'module' | 'option' | 'target' }[] {
  const out: { start: number; end: number; module?: string; kind: 'base' | 'module' | 'option' | 'target' }[] = [];
  let i = 2; // after -A CHAIN
  let module: { start: number; name: string } | undefined;
  const closeModule = (end: number): void => {
    if (module !== undefined) out.push({ start: module.start, end, module: module.name, kind: 'module' });
    module = undefined;
  };
  while (i < words.length) {
    const start = words[i] === '!' ? i : i;
    const at = words[i] === '!' ? i + 1 : i;
    const w = words[at];
    let end = at + 1;
    while (end < words.length && !words[end].startsWith('-') && words[end] !== '!') end++;
    if (w === '-m') {
      closeModule(start);
      module = { start, name: words[at + 1] };
      i = at + 2;
      continue;
    }
    if (w === '-j' || w === '-g') {
      closeModule(start);
      out.push({ start, end: words.length, kind: 'target' });
      break;
    }
    if (['-s', '-d', '-i', '-o', '-p'].includes(w)) {
      closeModule(start);
      out.push({ start, end, kind: 'base' });
    } else out.push({ start, end, kind: 'option', ...(module !== undefined ? { module: module.name } : {}) });
    i = end;
  }
  closeModule(i);
  return out;
}

function quote(word: string): string {
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Every mutant of one rule line: removed; and, unless `removalOnly`, each group dropped and the
 * target turned — the ones that still make a rule iptables takes (dropping -p from a rule with a
 * protocol match, or a match's only option, would only make the table unreadable).
 */
function ruleMutants(chain: string, line: string, family: 4 | 6, removalOnly: boolean): Mutant[] {
  const out: Mutant[] = [{ what: 'removed', chain, line, replacement: '' }];
  if (removalOnly) return out;
  const words = tokenize(line).map((w) => w.text);
  const join = (ws: readonly string[]) => ws.map(quote).join(' ');
  const variants: Mutant[] = [];
  for (const g of groups(words)) {
    if (g.kind === 'target' || g.module === 'comment') continue;
    variants.push({ what: `without ${join(words.slice(g.start, g.end))}`, chain, line, replacement: join([...words.slice(0, g.start), ...words.slice(g.end)]) });
  }
  const j = words.indexOf('-j');
  const target = words[j + 1];
  const turned = target === 'ACCEPT' ? 'DROP' : 'ACCEPT';
  if (j >= 0) variants.push({ what: `-j ${target} turned into -j ${turned}`, chain, line, replacement: join([...words.slice(0, j + 1), turned]) });
  const chains = [...POLICY_CHAINS, 'tw-in-drop', 'tw-out-drop', 'tw-in-invalid', 'tw-out-invalid', 'tw-out-spoof', 'tw-out-imds', 'tw-fwd-drop'];
  for (const v of variants) {
    try {
      parseRuleLine(v.replacement, family, chains);
      out.push(v);
    } catch {
      // not a rule iptables takes: no widening, just an unreadable table
    }
  }
  return out;
}

/**
 * Mutants of one family's table: every built-in policy flipped, every rule outside the policy
 * chains removed, and (for the rules in `widen`) widened or narrowed.
 */
function tableMutants(text: string, family: 4 | 6, widen: (chain: string, key: string) => boolean): Mutant[] {
  const doc = parseIptablesRestore(text, family);
  const lines = text.split('\n');
  const out: Mutant[] = [];
  for (const c of doc.tables.get('filter')?.chains.values() ?? []) {
    if (c.builtin) {
      const line = lines.find((l) => l.startsWith(`:${c.name} `)) as string;
      out.push({ what: `policy ${c.policy} turned`, chain: c.name, line, replacement: line.replace(/ (DROP|ACCEPT) /, c.policy === 'DROP' ? ' ACCEPT ' : ' DROP ') });
    }
    if (POLICY_CHAINS.includes(c.name)) continue;
    for (const r of c.rules) out.push(...ruleMutants(c.name, lines[r.line - 1], family, !widen(c.name, r.verdictKey)));
  }
  return out;
}

/** The host-only rules of the sample server, by chain and meaning (every host shares most of them). */
function frameKeys(host: HostArtefact, family: 4 | 6): Set<string> {
  const text = readHostWall(decodeUserData(host.userData ?? {}).text).tables[family]?.text as string;
  const doc = parseIptablesRestore(text, family);
  return new Set([...(doc.tables.get('filter')?.chains.values() ?? [])].flatMap((c) => c.rules.map((r) => `${c.name}|${r.verdictKey}`)));
}

describe('twinwall check: the host-only part against the policy record', () => {
  const totals = { mutants: 0, caught: 0 };

  it.each(HOSTS)('%s: the walls agree, and the host-only part is verified as recorded', (fixture) => {
    const check = checkHost(synth(fixture));
    expect(check.findings.map((f) => f.text)).toEqual([]);
    for (const family of [4, 6]) expect(check.exceptions.join('\n')).toMatch(new RegExp(`IPv${family} host-only part as recorded \\(audit (on|off), instanceMetadata (root-only|none|all-users), onLoadFailure lockdown, subnets (none|10\\.0\\.1\\.0/24, 10\\.0\\.2\\.0/24)\\): all \\d+ rules outside the policy chains are present exactly as the renderer writes them`));
    if (fixture === 'sampleAudit') expect(check.exceptions).toContain('IPv4 audit mode, as recorded: the host wall logs and then admits what enforcement would drop, so the walls are compared as enforcing');
  });

  it.each(HOSTS)('%s: every rule of the host-only part removed, widened or narrowed, and every policy flipped, is a finding naming the chain', (fixture) => {
    const host = synth(fixture);
    const text = decodeUserData(host.userData ?? {}).text;
    const cfg = parseYaml(text, { version: '1.1' }) as Json;
    const wall = readHostWall(text);
    // The sample server's rules are widened on the sample server; on the others, the rules it
    // does not have (audit chains, the metadata modes' rules); every rule is removed everywhere.
    const sample = fixture === 'sample' ? undefined : synth('sample');
    const missed: string[] = [];
    let n = 0;
    for (const family of [4, 6] as const) {
      const shared = sample === undefined ? new Set<string>() : frameKeys(sample, family);
      const mutants = tableMutants(wall.tables[family]?.text as string, family, (chain, key) => !shared.has(`${chain}|${key}`));
      mutants.forEach((m, i) => {
        if (i % EVERY !== 0) return;
        n++;
        const check = checkHost(mutate(host, cfg, family, m.line, m.replacement));
        const report: CheckReport = { hosts: [check], problems: [] };
        const named = check.findings.some((f) => f.kind === 'host-only-part' && f.text.startsWith(`IPv${family} host-only part: `) && f.text.includes(m.chain));
        if (!hasFindings(report) || !named) missed.push(`IPv${family} ${m.chain}: ${m.what} (${m.line}) → ${JSON.stringify(check.findings.map((f) => f.text))}`);
      });
    }
    totals.mutants += n;
    totals.caught += n - missed.length;
    expect(missed).toEqual([]);
    expect(n).toBeGreaterThan(40 / EVERY);
  }, 30 * 60 * 1000);

  it('names the record when the table follows another (audit mode where enforcing was recorded)', () => {
    const enforcing = synth('sample');
    const audit = synth('sampleAudit');
    // The audit host's user-data under the enforcing host's record.
    const check = checkHost({ ...enforcing, userData: audit.userData as HostArtefact['userData'] });
    const lines = check.findings.map((f) => f.text);
    const rec = 'the record \\(audit off, instanceMetadata root-only, onLoadFailure lockdown, subnets none\\)';
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^IPv4 host-only part: tw-in-drop rule 1 is \\(-m connmark --mark 0x0/0x10000000 -j LOG --log-prefix "twinwall ingress audit: "\\); ${rec} requires \\(-m limit --limit 10/min --limit-burst 20 -j LOG --log-prefix "twinwall ingress drop: "\\)$`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^IPv6 host-only part: tw-out-drop rule 2 is \\(-m conntrack --ctstate INVALID,UNTRACKED -m limit --limit 10/min --limit-burst 20 -j LOG --log-prefix "twinwall egress audit: " --log-uid\\); ${rec} requires \\(-j DROP\\)$`)));
  });

  it('reads the record and refuses one it cannot read', () => {
    const host = synth('sample');
    expect(host.wallRecord).toEqual({
      options: { audit: false, instanceMetadata: 'root-only', onLoadFailure: 'lockdown', subnets: [] },
      hostFirewall: 'iptables',
      source: expect.stringMatching(/^tag twinwall:host-wall on aws_security_group\.h_SecurityGroup_\w+$/),
    });
    const bad = checkHost({ ...host, wallRecord: { problem: 'tag twinwall:host-wall: instanceMetadata "everyone" is not valid', source: 'tag twinwall:host-wall on aws_security_group.x' } });
    expect(bad.findings.map((f) => f.text)[0]).toMatch(/^tag twinwall:host-wall: instanceMetadata "everyone" is not valid \(tag twinwall:host-wall on aws_security_group\.x\): the host-only part .* cannot be checked against the policy$/);
    expect(bad.findings.length).toBeGreaterThan(1); // and DHCP is no longer excused
  });

  it('the record names the backend: an iptables host recorded as nftables is a finding; a record without a backend, or another one, is refused', () => {
    const host = synth('sample');
    const rec = host.wallRecord as { options: ReturnType<typeof resolveHostPolicyOptions>; hostFirewall: 'iptables' | 'nftables'; source: string };
    expect(checkHost(host).findings).toEqual([]);
    const swapped = checkHost({ ...host, wallRecord: { ...rec, hostFirewall: 'nftables' } });
    expect(swapped.findings.map((f) => f.text)).toEqual([
      expect.stringMatching(/^the host-wall record \(tag twinwall:host-wall on aws_security_group\.\w+\) says hostFirewall=nftables, but the user-data ships the iptables wall \(\/etc\/iptables\/rules\.v4, \/etc\/iptables\/rules\.v6\): the host does not run the backend it was synthesized with$/),
    ]);
    expect(hasFindings({ problems: [], hosts: [swapped] } as unknown as CheckReport)).toBe(true);
    const tag = 'audit=false hostFirewall=iptables instanceMetadata=root-only onLoadFailure=lockdown subnets=';
    expect(hostWallTags(rec.options, 'iptables')).toEqual({ 'twinwall:host-wall': tag });
    expect(readHostWallTags({ 'twinwall:host-wall': tag })).toEqual({ options: rec.options, hostFirewall: 'iptables' });
    expect(readHostWallTags({ 'twinwall:host-wall': tag.replace('hostFirewall=iptables', 'hostFirewall=nftables') })).toEqual({ options: rec.options, hostFirewall: 'nftables' });
    expect(readHostWallTags({ 'twinwall:host-wall': tag.replace('hostFirewall=iptables ', '') })).toEqual({ problem: 'tag twinwall:host-wall does not record hostFirewall' });
    expect(readHostWallTags({ 'twinwall:host-wall': tag.replace('hostFirewall=iptables', 'hostFirewall=pf') })).toEqual({ problem: 'tag twinwall:host-wall: hostFirewall="pf" is not a host-wall backend (iptables, nftables)' });
    expect(readHostWallTags({ 'twinwall:host-wall': `${tag} hostFirewall=nftables` })).toEqual({ problem: 'tag twinwall:host-wall records hostFirewall twice' });
  });

  it.each(['sample', 'manyAdmins'] as const)('%s: every rule of the fallback removed, widened or narrowed, and every policy flipped, is a finding naming the fallback and the chain', (fixture) => {
    const host = synth(fixture);
    const text = decodeUserData(host.userData ?? {}).text;
    const cfg = parseYaml(text, { version: '1.1' }) as Json;
    const wall = readHostWall(text);
    const missed: string[] = [];
    let n = 0;
    for (const family of [4, 6] as const) {
      const fallback = wall.fallback[family]?.text as string;
      // The admin ingress is not in the part every host shares: which rules are administration is
      // not recorded, so removing one is narrower and not a finding (docs/check.md); widening is.
      const core = new Set(renderFallbackPart(resolveHostPolicyOptions({}), family).split('\n'));
      const mutants = tableMutants(fallback, family, () => true).filter((m) => !(m.what === 'removed' && !core.has(m.line)));
      mutants.forEach((m, i) => {
        if (i % EVERY !== 0) return;
        n++;
        const check = checkHost(mutateFallback(host, cfg, family, m.line, m.replacement));
        const named = check.findings.some((f) => f.kind === 'host-only-part' && f.text.startsWith(`IPv${family} fallback: `) && f.text.includes(m.chain));
        if (!named) missed.push(`IPv${family} fallback ${m.chain}: ${m.what} (${m.line}) → ${JSON.stringify(check.findings.map((f) => f.text))}`);
      });
    }
    totals.mutants += n;
    totals.caught += n - missed.length;
    expect(missed).toEqual([]);
    expect(n).toBeGreaterThan(30 / EVERY);
  }, 30 * 60 * 1000);

  it('a fallback wider than the real table, missing under lockdown, or shipped under open is a finding; open without one checks clean', () => {
    const host = synth('sample');
    const text = decodeUserData(host.userData ?? {}).text;
    const cfg = parseYaml(text, { version: '1.1' }) as Json;
    const admin = (readHostWall(text).fallback[4]?.text as string).split('\n').find((l) => l.includes('--dport 22')) as string;
    // The admin rule for every source: the real table admits SSH from the admin network only.
    const wider = checkHost(mutateFallback(host, cfg, 4, admin, admin.replace(/-s \S+ /, '')));
    expect(wider.findings.map((f) => f.text)).toContainEqual(expect.stringMatching(/^IPv4 fallback: INPUT rule \d+ \(.*\) admits ingress tcp\/22 from any IPv4 except .*, which the real table does not/));
    // An extra rule of another shape (egress of a role) is not in the fallback the renderer writes.
    const extra = checkHost(mutateFallback(host, cfg, 4, '-A OUTPUT -o lo -j ACCEPT', '-A OUTPUT -p tcp -m tcp --dport 443 -j ACCEPT'));
    expect(extra.findings.map((f) => f.text)).toContainEqual(expect.stringMatching(/^IPv4 fallback: OUTPUT rule 1 is \(-p tcp -m tcp --dport 443 -j ACCEPT\); the record \(onLoadFailure lockdown\) requires \(-o lo -j ACCEPT\)$/));
    // Lockdown recorded, no fallback shipped (the open host's user-data).
    const openPolicy = HostPolicy.compose('h', [ntpClient(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })], { onLoadFailure: 'open' });
    const open = synth(openPolicy);
    expect(checkHost(open).findings.map((f) => f.text)).toEqual([]);
    expect(checkHost(open).exceptions).toContainEqual(expect.stringMatching(/^IPv4 fallback: none, as recorded \(onLoadFailure open\)/));
    const lockdownRecord = synth(HostPolicy.compose('h', [ntpClient(), sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] })]));
    const none = checkHost({ ...lockdownRecord, userData: open.userData as HostArtefact['userData'] });
    expect(none.findings.map((f) => f.text)).toEqual(expect.arrayContaining([
      'IPv4 fallback: the user-data ships none, but the record (onLoadFailure lockdown) requires one: a table that fails to load at boot would leave IPv4 unfiltered on the host',
      'IPv6 fallback: the user-data ships none, but the record (onLoadFailure lockdown) requires one: a table that fails to load at boot would leave IPv6 unfiltered on the host',
    ]));
    const shipped = checkHost({ ...open, userData: lockdownRecord.userData as HostArtefact['userData'] });
    expect(shipped.findings.map((f) => f.text)).toContainEqual(expect.stringMatching(/^IPv4 fallback: the user-data ships one \(\/etc\/iptables\/fallback\.v4\), but the record \(onLoadFailure open\)/));
  });

  it('a policy admitting every ICMPv6 type out: router advertisements and redirects are dropped on purpose, listed, not a finding', () => {
    const icmp6 = synth(HostPolicy.compose('h', [customRole('ping6', [Flow.egress(Port.allIcmpv6(), Peer.ipv6('2001:db8:5::/48'), 'every ICMPv6 message to the lab')])]));
    const check = checkHost(icmp6);
    expect(check.findings.map((f) => f.text)).toEqual([]);
    expect(check.exceptions).toContainEqual(
      expect.stringMatching(/^host-only part, IPv6 egress: the host wall drops on purpose what the network wall admits, as the record requires \(a host is not a router\): router advertisement out: a host is not a router \(egress icmpv6 type 134 to 2001:db8:5::\/48\) by OUTPUT rule \d+; redirect out: a host is not a router \(egress icmpv6 type 137 to 2001:db8:5::\/48\) by OUTPUT rule \d+$/),
    );
  });

  afterAll(() => {
    // eslint-disable-next-line no-console
    if (totals.mutants > 0) console.log(`check (host-only part): ${totals.caught} of ${totals.mutants} mutants caught${EVERY > 1 ? ` (every ${EVERY}th; CI=true runs all)` : ''}`);
  });
});
