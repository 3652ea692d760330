/**
 * The checker on the nftables wall (lib/check/nft-parse.ts): every rendering reads exactly into
 * what the iptables wall means (both families, rule for rule, and the sets); what the reader
 * cannot model exactly is refused, never agreed with; `check` agrees on hosts that ship the
 * nftables wall and reads the host-only part against the wall record; each mutation of the file
 * (a rule removed, a statement dropped, a verdict or a policy flipped), in the host-only part and
 * in the policy chains, is a finding (or, in a policy chain, provably changes nothing the walls
 * admit); verify loads the wall from the user-data into a namespace and reads back what the kernel
 * stored. Under CI=true every mutant runs; otherwise every fourth.
 */
import { HostPolicy } from '../lib';
import { HostArtefact, IntervalSet, IpsetDefinition, Region, canonicalLines, parseIpsets, checkHost, readStack, explainFlow, parseIptablesRestore, parseNftables, parseTraffic } from '../lib/check';
import { renderIptables, renderNftables } from '../lib/render';
import { ROLE_FIXTURES, edgePolicy } from './support/fixtures';
import { Json } from './support/artefacts';
import { nftHost, withNft } from './support/nft-host';
import { loadNftablesWall, verifyHost } from '../cli/verify';
import { NetnsLab } from '../cli/netns';
import { describeTier, netns, nft, onPath, root } from './support/tiers';

const ALL: Record<string, () => HostPolicy> = { ...ROLE_FIXTURES, edge: () => edgePolicy(), edgeAudit: () => edgePolicy({ audit: true }) };
const EVERY = process.env.CI === 'true' || process.env.TWINWALL_MUTANTS === 'all' ? 1 : 4;

describe('the nftables reader', () => {
  it.each(Object.entries(ALL))('%s: the nftables file means exactly what the iptables wall means, both families', (_name, make) => {
    const policy = make();
    for (const threshold of [undefined, 1]) {
      const opts = threshold === undefined ? {} : { ipsetThreshold: threshold };
      const text = renderNftables(policy, opts).text;
      const wall = parseNftables(text);
      if (/ update @/.test(text)) {
        // Audit mode's per-flow log limit as a dynamic set keyed by flow: refused (a finding).
        expect(policy.options.audit).toBe(true);
        expect(wall.problems.map((p) => p.message).join('\n')).toMatch(/concatenated type/);
        continue;
      }
      expect(wall.problems).toEqual([]);
      const ipt = renderIptables(policy, opts);
      const ipsets = new Map([...wall.sets.values()].map((s) => [s.name, s.family] as const));
      for (const family of [4, 6] as const) {
        const theirs = parseIptablesRestore(family === 4 ? ipt.v4 : ipt.v6, family, { ipsets });
        expect(theirs.problems).toEqual([]);
        expect(canonicalLines(wall.documents[family], { comments: false })).toEqual(canonicalLines(theirs, { comments: false }));
      }
      // The interval sets hold the addresses of the ipsets the iptables wall loads.
      const members = (d: IpsetDefinition | undefined) => d?.members.reduce((acc, m) => acc.union(m.addresses), IntervalSet.EMPTY).intervals;
      const theirSets = parseIpsets(ipt.ipsets === undefined ? [] : [ipt.ipsets]);
      expect([...wall.sets.keys()].sort()).toEqual([...theirSets.keys()].sort());
      for (const [name, set] of theirSets) {
        expect(wall.sets.get(name)?.family).toBe(set.family);
        expect(members(wall.sets.get(name))).toEqual(members(set));
      }
      if (threshold === 1 && _name === 'manyAdmins') expect(theirSets.size).toBeGreaterThan(0);
    }
  });

  it('keeps the nft line and chain position of every rule, its text the translation the checker modelled', () => {
    const text = renderNftables(ROLE_FIXTURES.sample()).text;
    const wall = parseNftables(text);
    const lines = text.split('\n');
    const output = wall.documents[4].tables.get('filter')?.chains.get('OUTPUT');
    const imds = output?.rules.find((r) => r.text.includes('169.254.169.254') && r.target?.name === 'ACCEPT');
    expect(imds?.text).toMatch(/^-d 169\.254\.169\.254\/32 -p tcp -m tcp --dport 80 -m owner --uid-owner 0 -m conntrack --ctstate NEW -m comment --comment .* -j ACCEPT$/);
    expect(lines[(imds?.line ?? 0) - 1].trim().startsWith('ip daddr 169.254.169.254 tcp dport 80 meta skuid 0 ct state new accept')).toBe(true);
    const outputLines = lines.slice(lines.indexOf('\tchain output {') + 2);
    expect(outputLines[(imds?.number ?? 0) - 1]).toBe(lines[(imds?.line ?? 0) - 1]);
    expect(imds?.comment).toBe('twinwall: instance metadata, root only (instanceMetadata root-only)');
  });

  it('reads what nft -n list prints (numbers, wrapped set elements) like the file', () => {
    const policy = ROLE_FIXTURES.manyAdmins();
    const file = parseNftables(renderNftables(policy).text);
    const rendered = renderNftables(policy).text;
    const listing = rendered
      .split('\n')
      .filter((l) => !l.startsWith('#') && !l.startsWith('add table') && !l.startsWith('delete table'))
      .join('\n')
      .replace(/\t\telements = \{\n([\s\S]*?)\t\t\}\n/, (_m, body: string) => {
        const elements = body.split('\n').map((l) => l.trim().replace(/,$/, '')).filter((l) => l !== '');
        const rows: string[] = [];
        for (let k = 0; k < elements.length; k += 2) rows.push(elements.slice(k, k + 2).join(', '));
        const pairs = rows.join(',\n\t\t\t     ');
        return `\t\telements = { ${pairs} }\n`;
      })
      .replace(/\n\t\}\n\tchain/g, '\n\t}\n\n\tchain')
      .replace(/priority filter;/g, 'priority 0;')
      .replace(/ct state established,related/g, 'ct state 0x2,0x4')
      .replace(/ct state invalid/g, 'ct state 0x1')
      .replace(/ct state new/g, 'ct state 0x8')
      .replace(/meta nfproto ipv4/g, 'meta nfproto 2')
      .replace(/meta nfproto ipv6/g, 'meta nfproto 10')
      .replace(/fib saddr type != local/g, 'fib saddr type != 2');
    expect(listing).toMatch(/elements = \{ 192\.0\.2\.1, 192\.0\.2\.3,\n/);
    const read = parseNftables(listing, { form: 'listing' });
    expect(read.problems).toEqual([]);
    for (const family of [4, 6] as const) expect(canonicalLines(read.documents[family])).toEqual(canonicalLines(file.documents[family]));
    expect(read.setSources[0].elements).toEqual(file.setSources[0].elements);
  });

  it('reads each spelling nft has for a connmark match, as the kernel stores it', () => {
    const table = (match: string): string => `table inet twinwall {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tct mark ${match} accept\n\t}\n}\n`;
    const mark = (match: string, form: 'file' | 'listing'): string => {
      const wall = parseNftables(form === 'file' ? `add table inet twinwall\ndelete table inet twinwall\n${table(match)}` : table(match), { form });
      expect(wall.problems).toEqual([]);
      const found = /connmark\([^)]*\)/.exec(canonicalLines(wall.documents[4]).join('\n'));
      expect(found).not.toBeNull();
      return found?.[0] ?? '';
    };
    // A mask of all ones is listed as `ct mark V`, one of leading ones as `ct mark V/N` with V as stored.
    expect(mark('0x5', 'listing')).toBe(mark('& 0xffffffff == 0x5', 'file'));
    expect(mark('0x12345678/16', 'listing')).toBe('connmark(--mark=0x12345678/0xffff0000)');
    expect(mark('0x00000005/0', 'listing')).toBe(mark('& 0x0 == 0x5', 'file'));
    // Read from a file, nft clears the host bits of `V/N` before storing it.
    expect(mark('0x12345678/16', 'file')).toBe(mark('& 0xffff0000 == 0x12340000', 'file'));
    expect(parseNftables(table('0x5/33'), { form: 'listing' }).problems.map((p) => p.message).join()).toMatch(/33 bits is wider/);
  });

  it('translates a rule seen before in another table as that table says (rules are translated once per distinct context)', () => {
    // The same rule, first where everything it names exists, then where the set is of the other
    // family, or missing, or the chain it jumps to is not there: each reading depends on its own
    // table, never on an earlier one.
    const wall = (sets: string, chains: string, rule: string): string =>
      `add table inet twinwall\ndelete table inet twinwall\ntable inet twinwall {\n${sets}${chains}\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\t${rule}\n\t}\n}\n`;
    const set = (type: string) => `\tset admins {\n\t\ttype ${type}\n\t\tflags interval\n\t\telements = { ${type === 'ipv4_addr' ? '192.0.2.0/24' : '2001:db8::/32'} }\n\t}\n`;
    const extra = '\tchain extra {\n\t\taccept\n\t}\n';
    const problems = (text: string): string => parseNftables(text).problems.map((p) => p.message).join('\n');
    const bySet = 'ip saddr @admins tcp dport 22 ct state new accept';
    expect(problems(wall(set('ipv4_addr'), '', bySet))).toBe('');
    expect(problems(wall(set('ipv6_addr'), '', bySet))).toMatch(/holds IPv6 addresses/);
    expect(problems(wall('', '', bySet))).toMatch(/set admins is not defined/);
    const jump = 'tcp dport 22 ct state new jump extra';
    expect(problems(wall('', extra, jump))).toBe('');
    expect(problems(wall('', '', jump))).toMatch(/no such regular chain/);
    // The same rule at another place keeps its own line and position.
    const twice = parseNftables(wall('', '', 'iifname "lo" accept\n\t\ttcp dport 22 accept\n\t\ttcp dport 22 accept'));
    const input = twice.documents[4].tables.get('filter')?.chains.get('INPUT')?.rules ?? [];
    expect(input.map((r) => [r.number, r.line])).toEqual([[1, 6], [2, 7], [3, 8]]);
  });

  const sample = renderNftables(ROLE_FIXTURES.sample()).text;
  const REFUSED: [string, (t: string) => string, RegExp][] = [
    ['a file that does not replace the table first', (t) => t.replace('delete table inet twinwall\n', ''), /does not begin/],
    ['flush ruleset', (t) => `flush ruleset\n${t}`, /does not begin/],
    ['another table after it', (t) => `${t}table ip filter {\n}\n`, /after table inet twinwall/],
    ['a table other than inet twinwall', (t) => t.replace(/table inet twinwall \{/, 'table ip twinwall {'), /is not "table inet twinwall"/],
    ['a base chain before conntrack', (t) => t.replace('hook input priority filter', 'hook input priority -300'), /priority filter/],
    ['a second base chain on one hook', (t) => t.replace('type filter hook forward', 'type filter hook input'), /second base chain on hook input/],
    ['table flags', (t) => t.replace('table inet twinwall {\n', 'table inet twinwall {\n\tflags dormant\n'), /sets and chains only/],
    ['a # comment after a statement', (t) => t.replace('iifname "lo" accept', 'iifname "lo" accept # x'), /"#" comment after a statement/],
    ['a counter', (t) => t.replace('iifname "lo" accept', 'iifname "lo" counter accept'), /statement "counter"/],
    ['a host name', (t) => t.replace('ip daddr 169.254.169.254 jump', 'ip daddr metadata.internal jump'), /not a literal IPv4 address/],
    ['an address with host bits', (t) => t.replace('ip6 saddr fe80::/10', 'ip6 saddr fe80::1/10'), /host bits|literal/],
    ['an anonymous set', (t) => t.replace('tcp dport 25 ct state new', 'tcp dport { 25, 587 } ct state new'), /no anonymous sets/],
    ['a port with a leading zero', (t) => t.replace('tcp dport 25 ct state new', 'tcp dport 025 ct state new'), /decimal/],
    ['a wildcard interface', (t) => t.replace('iifname "lo"', 'iifname "eth*"'), /without wildcards/],
    ['a jump to a chain that does not exist', (t) => t.replace('jump tw-in comment', 'jump tw-nowhere comment'), /no such regular chain/],
    ['two families in one rule', (t) => t.replace('ip daddr 169.254.169.254 jump', 'ip6 hoplimit 255 ip daddr 169.254.169.254 jump'), /matches nothing/],
    ['a verdict after log', (t) => t.replace('log prefix "twinwall forward drop: "', 'log prefix "twinwall forward drop: " drop'), /after the verdict|one thing/],
    ['a reject', (t) => t.replace(/(\tchain tw-in-drop \{\n[^\n]*\n)\t\tdrop/, '$1\t\treject'), /statement "reject"/],
    ['a string with a backslash', (t) => t.replace('"twinwall: loopback"', '"twinwall: loop\\\\back"'), /string holds "\\"/],
    ['a connmark set of no bits (nft lists it without "| 0x0")', (t) => t.replace('iifname "lo" accept', 'iifname "lo" ct mark set ct mark | 0x0 accept'), /sets no bit/],
    ['a chain comment (a line that is only a comment)', (t) => t.replace('\t\tiifname "lo" accept', '\t\tcomment "chain"\n\t\tiifname "lo" accept'), /chain comment/],
    ['meta l4proto 0 (to iptables, -p 0 is every protocol)', (t) => t.replace('iifname "lo" accept', 'iifname "lo" meta l4proto 0 accept'), /protocol 0 alone/],
    ['limit rate over', (t) => t.replace('meta nfproto ipv4 udp sport', 'meta nfproto ipv4 limit rate over 5/second udp sport'), /limit rate over is not/],
  ];
  it.each(REFUSED)('refuses %s', (_what, change, why) => {
    const text = change(sample);
    expect(text).not.toBe(sample);
    const wall = parseNftables(text);
    expect(wall.problems.map((p) => p.message).join('\n')).toMatch(why);
    for (const family of [4, 6] as const) expect(wall.documents[family].problems.length).toBeGreaterThan(0);
  });

  it('refuses overlapping or typeless set elements as nft does', () => {
    const text = renderNftables(ROLE_FIXTURES.manyAdmins()).text;
    expect(parseNftables(text.replace('\t\t\t192.0.2.1,\n', '\t\t\t192.0.2.0/30,\n\t\t\t192.0.2.1,\n')).problems.map((p) => p.message).join()).toMatch(/overlaps/);
    expect(parseNftables(text.replace('\t\tflags interval\n', '').replace('\t\t\t192.0.2.1,\n', '\t\t\t192.0.2.0/31,\n')).problems.map((p) => p.message).join()).toMatch(/without "flags interval"/);
    expect(parseNftables(text.replace('\t\ttype ipv4_addr\n', '')).problems.map((p) => p.message).join()).toMatch(/has no type/);
    expect(parseNftables(text.replace('ip saddr @tw4-in-tcp-22', 'ip saddr @tw4-missing')).problems.map((p) => p.message).join()).toMatch(/not defined/);
  });
});

const HOSTS = ['sample', 'sampleAudit', 'metadataNone', 'metadataAllUsers', 'manyAdmins'] as const;

describe('twinwall check on hosts that ship the nftables wall', () => {
  const hosts = new Map<string, { host: HostArtefact; nft: string; cfg: Json }>();
  beforeAll(() => {
    for (const name of HOSTS) hosts.set(name, nftHost(ROLE_FIXTURES[name]()));
  });

  it.each(HOSTS)('%s: the walls agree, and the host-only part is as recorded', (name) => {
    const { host } = hosts.get(name) as { host: HostArtefact };
    const check = checkHost(host);
    expect(check.findings).toEqual([]);
    expect(check.wall.nftables?.path).toBe('/etc/twinwall/twinwall.nft');
    expect(check.exceptions.join('\n')).toMatch(/IPv4 host-only part as recorded/);
    expect(check.exceptions.join('\n')).toMatch(/IPv6 host-only part as recorded/);
  });

  it('a host-wall record naming the other backend is a finding: the user-data ships the nftables wall, the tag says iptables', () => {
    const { json } = nftHost(ROLE_FIXTURES.sample());
    const groups = Object.values((json.resource as Json).aws_security_group as Record<string, Json>);
    const tagged = groups.filter((g) => typeof g.tags?.['twinwall:host-wall'] === 'string');
    expect(tagged).toHaveLength(1);
    expect(tagged[0].tags['twinwall:host-wall']).toMatch(/ hostFirewall=nftables /);
    const [recorded] = readStack('nft', json);
    expect(checkHost(recorded).findings).toEqual([]);
    const mutant = JSON.parse(JSON.stringify(json).replace('hostFirewall=nftables', 'hostFirewall=iptables'));
    const [host] = readStack('nft', mutant);
    expect(checkHost(host).findings.map((f) => f.text)).toEqual([
      expect.stringMatching(/^the host-wall record \(tag twinwall:host-wall on aws_security_group\.\w+\) says hostFirewall=iptables, but the user-data ships the nftables wall \(\/etc\/twinwall\/twinwall\.nft\): the host does not run the backend it was synthesized with$/),
    ]);
  });

  it('explain names the nftables rule that decides', () => {
    const { host } = hosts.get('sample') as { host: HostArtefact };
    const check = checkHost(host);
    const { protocol, point } = parseTraffic('tcp/25');
    const e = explainFlow(check, { direction: 'egress', protocol, point, address: '203.0.113.9', uid: 1000 });
    expect(e.disagree).toBe(false);
    // The path names the nft chain's rule by its position and its comment.
    expect(e.lines.join('\n')).toMatch(/tw-out rule \d+ "mailServer\/smtp: delivering mail to other mail servers"/);
    const metadata = explainFlow(check, { direction: 'egress', ...parseTraffic('tcp/80'), address: '169.254.169.254', uid: 1000 });
    expect(metadata.lines.join('\n')).toMatch(/OUTPUT rule \d+/);
  });

  it('a bootcmd copy that differs from write_files is a finding', () => {
    const { host, cfg } = hosts.get('sample') as { host: HostArtefact; cfg: Json };
    const copy = JSON.parse(JSON.stringify(cfg));
    const boot = copy.bootcmd[0] as string[];
    boot[boot.length - 1] = boot[boot.length - 1].replace('tcp dport 25 ct state new', 'tcp dport 26 ct state new');
    const { stringify } = jest.requireActual('yaml');
    const check = checkHost({ ...host, userData: { base64: Buffer.from(`#cloud-config\n${stringify(copy, { lineWidth: 0, version: '1.1' })}`).toString('base64') } });
    expect(check.findings.map((f) => f.text).join('\n')).toMatch(/first-boot copy of the nftables wall differs/);
  });

  /** Statement groups of one nft rule (word index ranges), as the reader splits them. */
  function statementGroups(words: readonly string[]): [number, number][] {
    const starts = new Set(['iifname', 'oifname', 'meta', 'ip', 'ip6', 'tcp', 'udp', 'icmp', 'icmpv6', 'ct', 'fib', 'limit', 'log', 'comment', 'accept', 'drop', 'jump', 'goto', 'return']);
    const out: [number, number][] = [];
    let i = 0;
    while (i < words.length) {
      let end = i + 1;
      if (words[i] === 'ct' && words[i + 1] === 'mark' && words[i + 2] === 'set') end = i + 6;
      else if (words[i] === 'icmp' || words[i] === 'icmpv6') end = i + 3;
      else while (end < words.length && !starts.has(words[end])) end++;
      out.push([i, end]);
      i = end;
    }
    return out;
  }

  function words(rule: string): string[] {
    return rule.match(/"[^"]*"|\S+/g) ?? [];
  }

  interface Mutant {
    readonly host: string;
    readonly what: string;
    readonly chain: string;
    readonly change: (t: string) => string;
  }

  function mutants(name: string, nft: string): Mutant[] {
    const out: Mutant[] = [];
    const lines = nft.split('\n');
    let chain = '';
    lines.forEach((line, i) => {
      const c = /^\tchain (\S+) \{$/.exec(line);
      if (c) chain = c[1];
      if (!line.startsWith('\t\t') || line.startsWith('\t\t\t') || /^\t\t(type|flags|elements|size|timeout)\b/.test(line) || line.trim() === '}') return;
      const at = (replacement: string | undefined) => (t: string) => {
        const ls = t.split('\n');
        if (replacement === undefined) ls.splice(i, 1);
        else ls[i] = replacement;
        return ls.join('\n');
      };
      const rule = line.trim();
      if (rule.startsWith('type filter hook')) {
        out.push({ host: name, what: `${chain}: policy drop turned into accept`, chain, change: at(line.replace('policy drop;', 'policy accept;')) });
        return;
      }
      out.push({ host: name, what: `${chain}: ${rule} removed`, chain, change: at(undefined) });
      const w = words(rule);
      for (const [a, b] of statementGroups(w)) {
        if (w[a] === 'comment' || ['accept', 'drop', 'jump', 'goto', 'return'].includes(w[a])) continue;
        out.push({ host: name, what: `${chain}: ${rule} without ${w.slice(a, b).join(' ')}`, chain, change: at(`\t\t${[...w.slice(0, a), ...w.slice(b)].join(' ')}`) });
      }
      const v = w.findIndex((x) => ['accept', 'drop', 'jump', 'goto'].includes(x));
      if (v >= 0) {
        const end = w[v] === 'jump' || w[v] === 'goto' ? v + 2 : v + 1;
        const turned = w[v] === 'accept' ? 'drop' : 'accept';
        out.push({ host: name, what: `${chain}: ${rule} with ${w.slice(v, end).join(' ')} turned into ${turned}`, chain, change: at(`\t\t${[...w.slice(0, v), turned, ...w.slice(end)].join(' ')}`) });
      }
    });
    return out;
  }

  const MODEL_CHAIN: Record<string, string> = { input: 'INPUT', forward: 'FORWARD', output: 'OUTPUT' };

  it.each(HOSTS)('%s: every mutant of the nftables file is a finding (in the host-only part, naming the chain)', (name) => {
    const { host, nft, cfg } = hosts.get(name) as { host: HostArtefact; nft: string; cfg: Json };
    // Rules the sample server has too are widened and turned on the sample server only; every
    // rule is removed on every host, and each host's own rules are mutated on it.
    const sampleRules = new Set(mutants('sample', (hosts.get('sample') as { nft: string }).nft).map((m) => m.what));
    const all = mutants(name, nft).filter((m) => name === 'sample' || m.what.endsWith(' removed') || !sampleRules.has(m.what));
    const run = all.filter((_m, i) => i % EVERY === 0);
    expect(run.length).toBeGreaterThan(10);
    const admitted = (c: ReturnType<typeof checkHost>) =>
      (['ingress', 'egress'] as const).flatMap((d) => ([4, 6] as const).map((f) => Region.of(c.models.host[d][f].admitted.map((a) => a.box))));
    const original = admitted(checkHost(host));
    /** The mutant admits exactly what the original does (e.g. `ct state new` dropped in a policy chain: first packets are NEW). */
    const equivalent = (c: ReturnType<typeof checkHost>) => admitted(c).every((r, k) => r.subtract(original[k]).isEmpty && original[k].subtract(r).isEmpty);
    const silent: string[] = [];
    let refused = 0;
    let equivalents = 0;
    for (const m of run) {
      const text = m.change(nft);
      if (text === nft) continue;
      const read = parseNftables(text);
      const check = checkHost(withNft(host, cfg, () => text));
      if (read.problems.length > 0) {
        // What the reader refuses is a finding too (the whole wall is undecidable), never agreement.
        refused++;
        expect(check.findings.some((f) => f.kind === 'artefact')).toBe(true);
        continue;
      }
      const chain = MODEL_CHAIN[m.chain] ?? m.chain;
      const policyChain = m.chain === 'tw-in' || m.chain === 'tw-out';
      const named = check.findings.some((f) => (policyChain ? f.kind !== 'artefact' : f.kind === 'host-only-part' && f.text.includes(chain)));
      if (!named && policyChain && equivalent(check)) {
        equivalents++;
        continue;
      }
      // The AWS link-local services are the host wall's alone to decide (a documented exception).
      if (!named && policyChain && /169\.254\.169\.|fd00:ec2::/.test(m.what)) continue;
      if (!named) silent.push(`${m.what}: ${check.findings.map((f) => `${f.kind}: ${f.text}`).join(' | ') || 'no finding'}`);
    }
    expect(silent).toEqual([]);
    // Almost every mutant is read and then found by the comparison, not refused.
    expect(refused).toBeLessThan(run.length / 4);
    expect(equivalents).toBeLessThan(run.length / 4);
  });
});

describeTier('verify (nftables)', [root, onPath('ip'), onPath('python3'), netns, nft], () => {
  const quiet = { timeoutMs: 1000, verbose: false, out: () => undefined };

  it('verify loads the nftables wall from the user-data: the kernel agrees with the security groups, and stores what the checker read', async () => {
    const { host } = nftHost(ROLE_FIXTURES.sample());
    const check = checkHost(host);
    expect(check.findings).toEqual([]);
    let v = await verifyHost(check, quiet);
    // A dropped packet is never echoed, an admitted one may time out on a loaded machine: retry.
    for (let round = 2; round <= 3 && v.disagreements.length > 0; round++) v = await verifyHost(check, quiet);
    expect(v.problems).toEqual([]);
    expect(v.probes).toBeGreaterThan(300);
    expect(v.disagreements).toEqual([]);
    expect(v.modelMismatches).toEqual([]);
  }, 300000);

  it('verify loads the nftables fallback first, as the loader does at boot: one the kernel refuses, or stores in a form the checker cannot read back, is a finding', async () => {
    const { host } = nftHost(ROLE_FIXTURES.sample());
    const check = checkHost(host);
    const nftWall = check.wall.nftables as { path: string; text: string; fallback: string };
    expect(check.wall.fallback[4]?.path).toBe('/etc/twinwall/fallback.nft');
    const withFallback = (text: string) => ({ ...check, wall: { ...check.wall, nftables: { ...nftWall, fallback: text } } });
    const path = '/etc/twinwall/twinwall.nft';
    const lab = await NetnsLab.create({ host: { addresses: ['192.0.2.10/32'], routes: [] }, peer: { addresses: ['198.51.100.1/32'], routes: [] } });
    try {
      // The real fallback: taken and stored as the checker read it; then the wall over it.
      expect(loadNftablesWall(nftWall.text, { check, path })(lab)).toEqual([]);
      const refused = withFallback(nftWall.fallback.replace('oifname "lo" accept', 'oifname "lo" jump tw-no-such-chain'));
      expect(loadNftablesWall(nftWall.text, { check: refused, path })(lab)).toEqual([
        expect.stringMatching(/^the kernel refuses the nftables fallback \/etc\/twinwall\/fallback\.nft \(nft -f\): .*; at boot a wall that fails to load would leave the host without its fallback$/),
      ]);
      // nft lists "meta nfproto ipv4 meta l4proto icmp" without its family test (the kernel keeps
      // it): the checker cannot read the kernel's copy back, which is a finding, never agreement.
      const icmp = withFallback(nftWall.fallback.replace('\t\tiifname "lo" accept\n', '\t\tiifname "lo" accept\n\t\tmeta nfproto ipv4 meta l4proto icmp accept\n'));
      expect((icmp.wall.nftables as { fallback: string }).fallback).not.toBe(nftWall.fallback);
      expect(loadNftablesWall(nftWall.text, { check: icmp, path })(lab)).toEqual([expect.stringMatching(/^the checker cannot read what nft list printed for \/etc\/twinwall\/fallback\.nft \(line \d+: /)]);
    } finally {
      lab.destroy();
    }
  }, 120000);

  it('the kernel\'s copy read back (nft -n list) that means something else than the checker read is a finding', async () => {
    const { host, cfg, nft: text } = nftHost(ROLE_FIXTURES.manyAdmins(), { ipsetThreshold: 1 });
    const check = checkHost(host);
    // The checker's reading of a wall that admits tcp/2222 instead of 22, the kernel given the real file.
    const other = checkHost(withNft(host, cfg, (t) => t.replace(/tcp dport 22 ct state new/g, 'tcp dport 2222 ct state new')));
    const problems = loadNftablesWall(text, { check: { ...check, documents: other.documents }, path: '/etc/twinwall/twinwall.nft' });
    const lab = await NetnsLab.create({ host: { addresses: ['192.0.2.10/32'], routes: [] }, peer: { addresses: ['198.51.100.1/32'], routes: [] } });
    try {
      const found = problems(lab);
      expect(found.join('\n')).toMatch(/the kernel stored \/etc\/twinwall\/twinwall\.nft \(IPv4\) differently from the checker's reading of it: the checker reads .*8ae/);
      // The right reading matches the kernel's, sets included.
      expect(loadNftablesWall(text, { check, path: '/etc/twinwall/twinwall.nft' })(lab)).toEqual([]);
    } finally {
      lab.destroy();
    }
  }, 120000);
});
