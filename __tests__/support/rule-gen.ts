/**
 * Random iptables-restore tables for the differential test of the checker's parser
 * (kernel-parse.property.test.ts): rule lines built from every match, option and target the
 * renderer writes and the checker reads, spelled every way iptables accepts them, plus hostile
 * forms — quoting that hides words in comments, `-j` inside comments, odd spacing and tabs,
 * negations where iptables takes them and where it does not, abbreviations, names, leading
 * zeros, long lines around iptables-restore's 10,239-byte line buffer.
 */
import fc from 'fast-check';

export type Family = 4 | 6;

/** User chains every generated table declares. */
export const USER_CHAINS = ['c-one', 'c-two', 'c-out'] as const;

/** ipsets the test creates in the namespace before loading (one per family). */
export const IPSETS: Record<Family, { name: string; type: string }> = {
  4: { name: 'tw4-gen', type: 'hash:net family inet' },
  6: { name: 'tw6-gen', type: 'hash:net family inet6' },
};

const pick = <T>(...xs: readonly T[]) => fc.constantFrom(...xs);

/** Words are joined by blanks of varying shape. */
const blank = fc.oneof({ weight: 8, arbitrary: fc.constant(' ') }, pick('  ', '\t', ' \t ', '\t\t'));

/**
 * Write a word so that iptables-restore reads it back as that word, in one of the spellings it
 * accepts: bare, fully double-quoted (with \" and \\), or half bare and half quoted (x"yz").
 */
function spell(word: string): fc.Arbitrary<string> {
  const quoted = `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const bare = word !== '' && !/[\s"]/.test(word);
  const options: fc.Arbitrary<string>[] = [fc.constant(quoted)];
  if (bare) options.push(fc.constant(word), fc.constant(word), fc.constant(word));
  const cut = word.search(/[\s"]/);
  const prefixLen = cut < 0 ? word.length : cut;
  if (prefixLen > 0 && word.length > 1) {
    options.push(fc.integer({ min: 1, max: Math.min(prefixLen, word.length - 1) }).map((i) => `${word.slice(0, i)}"${word.slice(i).replace(/[\\"]/g, (c) => `\\${c}`)}"`));
  }
  return fc.oneof(...options);
}

/** A sequence of words, each spelled some way, joined by blanks. */
function words(list: readonly string[]): fc.Arbitrary<string> {
  if (list.length === 0) return fc.constant('');
  return fc.tuple(fc.tuple(...list.map(spell)), fc.array(blank, { minLength: list.length, maxLength: list.length })).map(([ws, bs]) => ws.map((w, i) => (i === 0 ? w : `${bs[i]}${w}`)).join(''));
}

const neg = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

/** A part of a rule: its words, in order. Parts are shuffled before they are joined. */
type Part = readonly string[];

const port = fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 0, max: 65535 }).map(String) }, { weight: 6, arbitrary: pick('22', '53', '80', '443', '65535', '0') }, { weight: 1, arbitrary: pick('ssh', '022', '70000', '-1') });
/** Two ports, mostly in order. */
const ordered = fc.tuple(port, port, fc.integer({ min: 0, max: 9 })).map(([a, b, r]) => (r === 0 || Number(a) <= Number(b) || Number.isNaN(Number(a)) ? [a, b] : [b, a]));
const portRange = fc.oneof(
  { weight: 4, arbitrary: port },
  { weight: 3, arbitrary: ordered.map(([a, b]) => `${a}:${b}`) },
  { weight: 1, arbitrary: port.map((p) => `:${p}`) },
  { weight: 1, arbitrary: port.map((p) => `${p}:`) },
  { weight: 1, arbitrary: pick('0:65535', '1:1023', '1024:65535') },
);

const octet = fc.oneof({ weight: 250, arbitrary: fc.integer({ min: 0, max: 255 }).map(String) }, { weight: 20, arbitrary: pick('0', '255') }, { weight: 1, arbitrary: pick('010', '256') });
const v4 = fc.oneof(
  { weight: 80, arbitrary: fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')) },
  { weight: 1, arbitrary: pick('10.1', '1.2.3', 'localhost', '0.0.0.0', '255.255.255.255') },
);
const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
const v6 = fc.oneof(
  { weight: 60, arbitrary: fc.tuple(hex, hex, hex).map(([a, b, c]) => `2001:db8:${a}::${b}:${c}`) },
  { weight: 6, arbitrary: fc.tuple(hex, hex).map(([a, b]) => `fe80::${a}:${b}`) },
  { weight: 1, arbitrary: fc.tuple(hex, hex).map(([a, b]) => `2001:DB8:${a.toUpperCase()}:0:0:0:0:${b}`) },
  { weight: 3, arbitrary: pick('::', '::1', 'ff02::1:2', 'fd00:ec2::254', '::ffff:192.0.2.1') },
  { weight: 1, arbitrary: pick('2001:db8::1::2', 'fe80::1%eth0') },
);
const address = (family: Family) => (family === 4 ? v4 : v6);
const cidr = (family: Family) =>
  fc.oneof(
    { weight: 12, arbitrary: address(family) },
    { weight: 16, arbitrary: fc.tuple(address(family), fc.integer({ min: 0, max: family === 4 ? 32 : 128 })).map(([a, p]) => `${a}/${p}`) },
    { weight: 1, arbitrary: address(family).map((a) => `${a}/${family === 4 ? 33 : 129}`) },
    { weight: 12, arbitrary: fc.tuple(address(family), fc.integer({ min: 8, max: family === 4 ? 32 : 128 })).map(([a, p]) => `${a}/${p}`) },
  );
const addressList = (family: Family) => fc.oneof({ weight: 5, arbitrary: cidr(family) }, { weight: 1, arbitrary: fc.array(cidr(family), { minLength: 2, maxLength: 3 }).map((l) => l.join(',')) });

const ICMP4_TYPES = ['any', 'echo-reply', 'echo-request', 'ping', 'pong', 'destination-unreachable', 'network-unreachable', 'host-unreachable', 'protocol-unreachable', 'port-unreachable', 'fragmentation-needed', 'source-route-failed', 'network-unknown', 'host-unknown', 'network-prohibited', 'host-prohibited', 'TOS-network-unreachable', 'TOS-host-unreachable', 'communication-prohibited', 'host-precedence-violation', 'precedence-cutoff', 'source-quench', 'redirect', 'network-redirect', 'host-redirect', 'TOS-network-redirect', 'TOS-host-redirect', 'router-advertisement', 'router-solicitation', 'time-exceeded', 'ttl-exceeded', 'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'ip-header-bad', 'required-option-missing', 'timestamp-request', 'timestamp-reply', 'address-mask-request', 'address-mask-reply', 'ECHO-REQUEST', 'echo-req'];
const ICMP6_TYPES = ['destination-unreachable', 'no-route', 'communication-prohibited', 'beyond-scope', 'address-unreachable', 'port-unreachable', 'failed-policy', 'reject-route', 'packet-too-big', 'time-exceeded', 'ttl-exceeded', 'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'parameter-problem', 'bad-header', 'unknown-header-type', 'unknown-option', 'echo-request', 'ping', 'echo-reply', 'pong', 'router-solicitation', 'router-advertisement', 'neighbour-solicitation', 'neighbor-solicitation', 'neighbour-advertisement', 'neighbor-advertisement', 'redirect', 'any'];
const byte = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 255 }).map(String) }, pick('256', '08'));
const icmpType = (family: Family) =>
  fc.oneof(
    { weight: 3, arbitrary: pick(...(family === 4 ? ICMP4_TYPES : ICMP6_TYPES)) },
    { weight: 2, arbitrary: byte },
    { weight: 2, arbitrary: fc.tuple(byte, byte).map(([t, c]) => `${t}/${c}`) },
  );

/** Comment text that tries to hide words from a reader that quotes differently from iptables. */
const hostileText = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom(...'abcxyz0189 :/._-'.split('')), maxLength: 12 }) },
      { weight: 4, arbitrary: pick('"', "'", '\\', '\\"', '\t', ' ', '!', '#', '-j', ' -j ACCEPT', ' -d 10.10.0.2/32', " -m comment --comment '", '" -p tcp "', '--', '-') },
    ),
    { maxLength: 14 },
  )
  .map((parts) => parts.join(''));

const longText = fc.integer({ min: 200, max: 260 }).map((n) => 'L'.repeat(n));

function spellComment(text: string): fc.Arbitrary<string> {
  // Besides every spelling of the word, the raw text as someone might paste it ('…' quoting).
  return fc.oneof({ weight: 3, arbitrary: spell(text) }, { weight: 1, arbitrary: fc.constant(`'${text}'`) }, { weight: 1, arbitrary: fc.constant(text) });
}

const rate = fc.tuple(fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 1, max: 100 }) }, { weight: 1, arbitrary: pick(1000, 10000, 20000, 0) }), fc.oneof({ weight: 20, arbitrary: pick('s', 'sec', 'second', 'm', 'min', 'minute', 'h', 'hour', 'd', 'day') }, { weight: 1, arbitrary: pick('mn', 'SEC') })).map(([n, u]) => `${n}/${u}`);

function optionalParts(parts: readonly fc.Arbitrary<Part | undefined>[]): fc.Arbitrary<Part[]> {
  return fc.tuple(...parts).map((ps) => ps.filter((p): p is Part => p !== undefined));
}

function maybe<T>(arb: fc.Arbitrary<T>, weight = 1): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight, arbitrary: arb });
}

const withNeg = (n: boolean, name: string, ...args: string[]): Part => (n ? ['!', name, ...args] : [name, ...args]);

/** One match, with -m or implicit (protocol matches after -p). */
function match(family: Family): fc.Arbitrary<{ parts: Part[]; protocol?: string }> {
  const ports = (names: [string, string][]) =>
    optionalParts(names.map(([name, alias]) => maybe(fc.tuple(neg, pick(name, alias), portRange).map(([n, o, v]) => withNeg(n, o, v)), 2)));
  const proto = (name: string, protoWords: string[], body: fc.Arbitrary<Part[]>) =>
    fc.tuple(pick(...protoWords), fc.boolean(), body).map(([p, explicit, opts]) => ({ protocol: p, parts: explicit ? [['-m', name], ...opts] : opts }));
  const tcp = proto(
    'tcp',
    ['tcp', 'tcp', '6', 'TCP'],
    fc.tuple(
      ports([
        ['--sport', '--source-port'],
        ['--dport', '--destination-port'],
      ]),
      maybe(
        fc.oneof(
          neg.map((n) => withNeg(n, '--syn')),
          fc.tuple(neg, pick('SYN,ACK', 'FIN,SYN,RST,ACK', 'ALL', 'NONE', 'SYN', 'PSH,URG'), pick('SYN', 'NONE', 'ACK', 'ALL', 'FIN,ACK')).map(([n, m, c]) => withNeg(n, '--tcp-flags', m, c)),
        ),
      ),
    ).map(([p, f]) => (f === undefined ? p : [...p, f])),
  );
  const udp = proto(
    'udp',
    ['udp', '17'],
    ports([
      ['--sport', '--source-port'],
      ['--dport', '--destination-port'],
    ]),
  );
  const icmp =
    family === 4
      ? proto('icmp', ['icmp', '1'], fc.tuple(neg, icmpType(4)).map(([n, t]) => [withNeg(n, '--icmp-type', t)]))
      : proto('icmp6', ['ipv6-icmp', 'icmpv6', '58'], fc.tuple(neg, icmpType(6)).map(([n, t]) => [withNeg(n, '--icmpv6-type', t)]));
  const plain = (body: fc.Arbitrary<Part[]>) => body.map((opts) => ({ parts: opts }));
  const m = (name: string, body: fc.Arbitrary<Part[]>) => plain(body.map((opts) => [['-m', name], ...opts]));
  const portList = fc.array(fc.oneof(port, ordered.map(([a, b]) => `${a}:${b}`)), { minLength: 1, maxLength: 7 }).map((l) => l.join(','));
  const states = (names: string[]) => fc.shuffledSubarray(names, { minLength: 1 }).map((l) => l.join(','));
  const addrtypes = states(['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT']);
  const id = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 70000 }).map(String) }, { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 500 })).map(([a, b]) => (a <= b ? `${a}-${b}` : `${b}-${a}`)) }, { weight: 1, arbitrary: pick('root', '0x10', '9-3') });
  const choices: fc.Arbitrary<{ parts: Part[]; protocol?: string }>[] = [
    tcp,
    udp,
    icmp,
    fc.tuple(fc.oneof({ weight: 9, arbitrary: pick('tcp', 'udp', '6', '17') }, { weight: 1, arbitrary: pick('icmp') }), fc.tuple(neg, pick('--dports', '--sports', '--ports', '--destination-ports'), portList)).map(([p, [n, o, l]]) => ({ protocol: p, parts: [['-m', 'multiport'], withNeg(n, o, l)] })),
    m('conntrack', fc.tuple(neg, states(['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'])).map(([n, s]) => [withNeg(n, '--ctstate', s)])),
    m('state', fc.tuple(neg, states(['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED'])).map(([n, s]) => [withNeg(n, '--state', s)])),
    m('comment', fc.oneof(hostileText, longText).map((t) => [['--comment', t]])),
    m('owner', optionalParts([maybe(fc.tuple(neg, id).map(([n, v]) => withNeg(n, '--uid-owner', v)), 3), maybe(fc.tuple(neg, id).map(([n, v]) => withNeg(n, '--gid-owner', v))), maybe(neg.map((n) => withNeg(n, '--socket-exists')))])),
    m('addrtype', optionalParts([maybe(fc.tuple(neg, addrtypes).map(([n, v]) => withNeg(n, '--src-type', v)), 6), maybe(fc.tuple(neg, addrtypes).map(([n, v]) => withNeg(n, '--dst-type', v)), 4)])),
    m('set', fc.tuple(neg, fc.oneof({ weight: 9, arbitrary: fc.constant(IPSETS[family].name) }, { weight: 1, arbitrary: pick('nosuchset', IPSETS[family === 4 ? 6 : 4].name) }), fc.oneof({ weight: 9, arbitrary: pick('src', 'dst', 'src,dst', 'dst,dst,src') }, { weight: 1, arbitrary: pick('foo') })).map(([n, s, f]) => [withNeg(n, '--match-set', s, f)])),
    m('iprange', optionalParts([maybe(fc.tuple(neg, address(family), address(family)).map(([n, a, b]) => withNeg(n, '--src-range', `${a}-${b}`)), 6), maybe(fc.tuple(neg, address(family)).map(([n, a]) => withNeg(n, '--dst-range', a)), 4)])),
    family === 6
      ? m('hl', fc.tuple(neg, pick('--hl-eq', '--hl-lt', '--hl-gt'), byte).map(([n, o, v]) => [withNeg(n, o, v)]))
      : m('ttl', fc.tuple(neg, pick('--ttl-eq', '--ttl-lt', '--ttl-gt'), byte).map(([n, o, v]) => [withNeg(n, o, v)])),
    m('limit', optionalParts([maybe(rate.map((r) => ['--limit', r]), 3), maybe(fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom(0, 10000, 10001)).map((b) => ['--limit-burst', `${b}`]))])),
    m(
      'hashlimit',
      fc
        .tuple(
          pick('--hashlimit-upto', '--hashlimit-above'),
          rate,
          fc.integer({ min: 0, max: 99999 }),
          optionalParts([
            maybe(fc.integer({ min: 1, max: 20 }).map((b) => ['--hashlimit-burst', `${b}`])),
            maybe(fc.shuffledSubarray(['srcip', 'srcport', 'dstip', 'dstport'], { minLength: 1 }).map((l) => ['--hashlimit-mode', l.join(',')]), 2),
            maybe(fc.integer({ min: 1, max: 100000 }).map((n) => ['--hashlimit-htable-expire', `${n}`])),
            maybe(fc.integer({ min: 1, max: 100000 }).map((n) => ['--hashlimit-htable-gcinterval', `${n}`])),
            maybe(fc.integer({ min: 1, max: 4096 }).map((n) => ['--hashlimit-htable-size', `${n}`])),
            maybe(fc.integer({ min: 1, max: 4096 }).map((n) => ['--hashlimit-htable-max', `${n}`])),
          ]),
        )
        .map(([mode, r, n, rest]) => [[mode, r], ['--hashlimit-name', `h${n}`], ...rest]),
    ),
    m('connmark', fc.tuple(neg, mark).map(([n, v]) => [withNeg(n, '--mark', v)])),
  ];
  return fc.oneof(...choices);
}

/** A connection mark as iptables accepts it: hex, decimal, with a mask or not; and forms it reads oddly or refuses. */
const mark = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff })).map(([v, m]) => `0x${v.toString(16)}/0x${m.toString(16)}`) },
  { weight: 3, arbitrary: pick('0x0/0x10000000', '0x10000000', '0x10000000/0x10000000', '16', '0', '0xffffffff') },
  { weight: 1, arbitrary: pick('010', '0x', '0x1/0x1/0x1', '0x100000000', '-1', 'mark', '0X10') },
);

const LOG_LEVELS = ['0', '4', '7', 'debug', 'info', 'warning', 'emerg', 'notice', 'alert', 'crit', 'error', '3', 'err', '8'];
const REJECTS: Record<Family, string[]> = {
  4: ['icmp-net-unreachable', 'net-unreach', 'icmp-host-unreachable', 'icmp-proto-unreachable', 'icmp-port-unreachable', 'port-unreach', 'icmp-net-prohibited', 'icmp-host-prohibited', 'host-prohib', 'icmp-admin-prohibited', 'admin-prohib', 'tcp-reset', 'icmp6-no-route'],
  6: ['icmp6-no-route', 'no-route', 'icmp6-adm-prohibited', 'adm-prohibited', 'icmp6-addr-unreachable', 'addr-unreach', 'icmp6-port-unreachable', 'port-unreach', 'tcp-reset', 'icmp-host-prohibited'],
};

function target(family: Family): fc.Arbitrary<Part[]> {
  return fc.oneof(
    { weight: 5, arbitrary: pick('ACCEPT', 'DROP', 'RETURN').chain((t) => pick('-j', '--jump').map((j) => [[j, t]])) },
    { weight: 2, arbitrary: fc.tuple(pick('-j', '-g', '--goto'), pick(...USER_CHAINS, 'undeclared')).map(([j, c]) => [[j, c]]) },
    {
      weight: 3,
      arbitrary: optionalParts([
        maybe(fc.oneof(hostileText.map((t) => t.slice(0, 32)), pick('twinwall egress drop: ', 'x')).map((p) => ['--log-prefix', p]), 3),
        maybe(pick(...LOG_LEVELS).map((l) => ['--log-level', l])),
        maybe(pick('--log-uid', '--log-tcp-sequence', '--log-tcp-options', '--log-ip-options', '--log-macdecode').map((f) => [f])),
      ]).map((opts) => [['-j', 'LOG'], ...opts]),
    },
    { weight: 2, arbitrary: maybe(pick(...REJECTS[family]), 3).map((w) => [['-j', 'REJECT'], ...(w === undefined ? [] : [['--reject-with', w]])]) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        { weight: 4, arbitrary: mark.map((v) => [['-j', 'CONNMARK'], ['--set-xmark', v]]) },
        { weight: 1, arbitrary: fc.tuple(pick('--set-mark', '--or-mark', '--and-mark', '--xor-mark'), mark).map(([o, v]) => [['-j', 'CONNMARK'], [o, v]]) },
        { weight: 1, arbitrary: fc.constant<Part[]>([['-j', 'CONNMARK']]) },
      ),
    },
  );
}

/** Noise: a word that should make the checker refuse the line (or that iptables reads oddly). */
const NOISE = ['!', '--', '-', '--dp', '-ptcp', '--comment=x', '-4', '-6', 'stray', '"-j"', '-t', 'filter', '! !', '-w', '--proto'];

/** One rule line for a table of `family` (with the chains of USER_CHAINS declared). */
export function ruleLine(family: Family): fc.Arbitrary<string> {
  const chain = pick('INPUT', 'OUTPUT', 'FORWARD', ...USER_CHAINS);
  const command = fc.oneof({ weight: 6, arbitrary: chain.map((c) => ['-A', c]) }, { weight: 1, arbitrary: chain.map((c) => ['--append', c]) }, { weight: 1, arbitrary: fc.tuple(chain, fc.oneof({ weight: 9, arbitrary: pick('', '1', '2') }, { weight: 1, arbitrary: pick('0', '99') })).map(([c, n]) => (n === '' ? ['-I', c] : ['-I', c, n])) });
  const base = optionalParts([
    maybe(fc.tuple(neg, pick('-s', '--source', '--src'), addressList(family)).map(([n, o, a]) => withNeg(n, o, a)), 2),
    maybe(fc.tuple(neg, pick('-d', '--destination', '--dst'), addressList(family)).map(([n, o, a]) => withNeg(n, o, a)), 2),
    maybe(fc.tuple(neg, pick('-i', '--in-interface', '-o', '--out-interface'), fc.oneof({ weight: 40, arbitrary: pick('lo', 'eth0', 'lo+', 'ens5') }, { weight: 1, arbitrary: pick('x'.repeat(16), 'a b') })).map(([n, o, i]) => withNeg(n, o, i))),
    ...(family === 4 ? [maybe(neg.map((n) => withNeg(n, '-f')))] : []),
  ]);
  const noise = fc.oneof({ weight: 24, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(pick(...NOISE), fc.nat()) });
  const extraProto = maybe(fc.oneof({ weight: 6, arbitrary: pick('all', '0', 'esp', '47', '200', 'gre', 'sctp', 'udplite', '255') }, { weight: 1, arbitrary: pick('GRE', 'nosuch') }));
  const body = fc.tuple(base, fc.array(match(family), { maxLength: 4 }), maybe(target(family), 6), noise, extraProto, fc.boolean(), neg).chain(([b, ms, t, n, other, targetFirst, negProto]) => {
    // One -p: the protocol of the first protocol match, or another; before the matches, so an
    // implicit protocol option finds it (iptables needs -p first for that).
    const proto = ms.find((m) => m.protocol !== undefined)?.protocol ?? other;
    const pp: Part[] = proto === undefined ? [] : [negProto ? ['!', '-p', proto] : ['-p', proto]];
    const matchParts = ms.flatMap((m) => m.parts);
    return fc.shuffledSubarray(b, { minLength: b.length, maxLength: b.length }).map((bs) => {
      const ordered: Part[] = targetFirst && t !== undefined ? [...bs, ...pp, ...t, ...matchParts] : [...bs, ...pp, ...matchParts, ...(t ?? [])];
      if (n === undefined) return ordered;
      const at = n[1] % (ordered.length + 1);
      return [...ordered.slice(0, at), [n[0]], ...ordered.slice(at)];
    });
  });
  const counters = fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 1, arbitrary: pick('[0:0] ', '[12:3456]', '[1:2] ') });
  return fc.tuple(counters, command, body).chain(([c, cmd, parts]) => words([...cmd, ...parts.flat()]).map((text) => `${c}${text}`));
}

/** A line whose comment text is spelled the raw ways people paste it (', unquoted). */
export function pastedCommentLine(): fc.Arbitrary<string> {
  return fc.tuple(pick('INPUT', 'OUTPUT'), hostileText, pick('ACCEPT', 'DROP')).chain(([c, t, j]) => spellComment(t).map((ct) => `-A ${c} -p tcp -m tcp --dport 22 -m comment --comment ${ct} -j ${j}`));
}

/** A line close to iptables-restore's 10,239-byte line limit, on either side of it. */
export function longLine(): fc.Arbitrary<string> {
  return fc.integer({ min: 10180, max: 10300 }).map((target) => {
    const head = '-A INPUT -p udp';
    const tail = ' -j ACCEPT';
    const chunk = (n: number) => ` -m comment --comment ${'c'.repeat(n)}`;
    let line = head;
    while (target - line.length - tail.length > 300) line += chunk(240);
    const rest = target - line.length - tail.length - ' -m comment --comment '.length;
    line += chunk(Math.max(1, rest));
    return `${line}${tail}`;
  });
}

/** A whole table: policies, the user chains, and `lines`. */
export function table(lines: readonly string[], policies: readonly string[] = ['DROP', 'DROP', 'DROP']): string {
  return ['*filter', `:INPUT ${policies[0]} [0:0]`, `:FORWARD ${policies[1]} [0:0]`, `:OUTPUT ${policies[2]} [0:0]`, ...USER_CHAINS.map((c) => `:${c} - [0:0]`), ...lines, 'COMMIT', ''].join('\n');
}
