/**
 * Kernel tier, ipset form: a host whose address lists are long enough to become ipsets
 * (hash:net, one per family) admits exactly the traffic the same host admits with one rule per
 * address (the linear form). Both forms are loaded into fresh network namespaces — the ipset
 * form through `ipset restore` first, as the user-data does — and judged by the same real TCP and
 * UDP connections, in both directions and both families. Only the namespaces carry any traffic;
 * every address is from the documentation ranges.
 */
import { Flow, HostPolicy, Peer, Port, customRole } from '../lib';
import { IptablesRuleset, renderIptables } from '../lib/render/iptables';
import { Agent, NetnsLab, Probe, ProbeResult } from './support/netns';
import { describeTier, ipset, netns, onPath, root } from './support/tiers';

const HOST4 = '203.0.113.10';
const HOST6 = '2001:db8:1::10';
const GW4 = '203.0.113.1';
const GW6 = '2001:db8:1::1';

/** 20 admins and 20 resolvers per family at odd offsets: nothing merges, every list is a set. */
const N = 20;
const admin4 = (i: number) => `192.0.2.${2 * i + 1}`;
const admin6 = (i: number) => `2001:db8:a::${(2 * i + 1).toString(16)}`;
const resolver4 = (i: number) => `198.51.100.${2 * i + 1}`;
const resolver6 = (i: number) => `2001:db8:53::${(2 * i + 1).toString(16)}`;
/** Neighbours of the listed addresses (even offsets): never admitted. */
const other4 = (i: number) => `192.0.2.${2 * i + 2}`;
const other6 = (i: number) => `2001:db8:a::${(2 * i + 2).toString(16)}`;
const otherResolver4 = (i: number) => `198.51.100.${2 * i + 2}`;
const otherResolver6 = (i: number) => `2001:db8:53::${(2 * i + 2).toString(16)}`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function policy(): HostPolicy {
  return HostPolicy.compose('lists', [
    customRole('admins', [
      ...range(N).map((i) => Flow.ingress(Port.tcp(22), Peer.ipv4(`${admin4(i)}/32`), 'admin host')),
      ...range(N).map((i) => Flow.ingress(Port.tcp(22), Peer.ipv6(`${admin6(i)}/128`), 'admin host')),
    ]),
    customRole('lookups', [
      ...range(N).map((i) => Flow.egress(Port.udp(53), Peer.ipv4(`${resolver4(i)}/32`), 'resolver')),
      ...range(N).map((i) => Flow.egress(Port.udp(53), Peer.ipv6(`${resolver6(i)}/128`), 'resolver')),
    ]),
  ]);
}

interface Case {
  readonly probe: Probe;
  readonly side: 'host' | 'peer';
  readonly admitted: boolean;
}

/** Every fourth listed address and its neighbour, both families, both directions. */
const CASES: readonly Case[] = range(N)
  .filter((i) => i % 4 === 0 || i === N - 1)
  .flatMap((i): Case[] => [
    { side: 'peer', probe: { id: `ssh4in${i}`, kind: 'tcp', dst: HOST4, port: 22, src: admin4(i) }, admitted: true },
    { side: 'peer', probe: { id: `ssh4out${i}`, kind: 'tcp', dst: HOST4, port: 22, src: other4(i) }, admitted: false },
    { side: 'peer', probe: { id: `ssh6in${i}`, kind: 'tcp', dst: HOST6, port: 22, src: admin6(i) }, admitted: true },
    { side: 'peer', probe: { id: `ssh6out${i}`, kind: 'tcp', dst: HOST6, port: 22, src: other6(i) }, admitted: false },
    { side: 'peer', probe: { id: `http4${i}`, kind: 'tcp', dst: HOST4, port: 80, src: admin4(i) }, admitted: false },
    { side: 'host', probe: { id: `dns4in${i}`, kind: 'udp', dst: resolver4(i), port: 53 }, admitted: true },
    { side: 'host', probe: { id: `dns4out${i}`, kind: 'udp', dst: otherResolver4(i), port: 53 }, admitted: false },
    { side: 'host', probe: { id: `dns6in${i}`, kind: 'udp', dst: resolver6(i), port: 53 }, admitted: true },
    { side: 'host', probe: { id: `dns6out${i}`, kind: 'udp', dst: otherResolver6(i), port: 53 }, admitted: false },
  ]);

/** What each probe did: "ok" (admitted and echoed) or the way it was refused. */
async function run(tables: IptablesRuleset): Promise<{ outcomes: Record<string, string>; live: string }> {
  const peerAddresses = [
    ...range(N).flatMap((i) => [admin4(i), other4(i), resolver4(i), otherResolver4(i)]).map((a) => `${a}/32`),
    ...range(N).flatMap((i) => [admin6(i), other6(i), resolver6(i), otherResolver6(i)]).map((a) => `${a}/128`),
  ];
  const lab = await NetnsLab.create({
    host: { addresses: [`${HOST4}/24`, `${HOST6}/64`], routes: [['default', 'via', GW4], ['default', 'via', GW6]] },
    peer: { addresses: [`${GW4}/24`, `${GW6}/64`, ...peerAddresses] },
  });
  try {
    const resolvers = range(N).flatMap((i) => [resolver4(i), otherResolver4(i), resolver6(i), otherResolver6(i)]);
    const agents: Agent[] = [
      await lab.startAgent('host', { tcp: [22, 80] }),
      await lab.startAgent('peer', { udp: resolvers.map((a) => [a, 53] as const) }),
    ];
    if (tables.ipsets !== undefined) lab.exec('host', ['ipset', '-exist', 'restore'], tables.ipsets);
    lab.loadRules(tables);
    const [fromPeer, fromHost] = await Promise.all([
      lab.probe('peer', CASES.filter((c) => c.side === 'peer').map((c) => c.probe)),
      lab.probe('host', CASES.filter((c) => c.side === 'host').map((c) => c.probe)),
    ]);
    const outcomes: Record<string, string> = {};
    for (const c of CASES) {
      const r = (c.side === 'peer' ? fromPeer : fromHost).get(c.probe.id) as ProbeResult;
      // An admitted probe must also have reached the listener on the far side.
      const heard = agents.some((a) => a.saw(r.token).length > 0);
      outcomes[c.probe.id] = r.outcome === 'ok' && !heard ? 'ok-but-unheard' : r.outcome;
    }
    return { outcomes, live: lab.exec('host', ['iptables-save']) + lab.exec('host', ['ip6tables-save']) };
  } finally {
    lab.destroy();
  }
}

describeTier('kernel: ipset form', [root, onPath('ip'), onPath('iptables-restore'), onPath('ip6tables-restore'), onPath('python3'), netns, ipset], () => {
  let linear: { outcomes: Record<string, string>; live: string };
  let sets: { outcomes: Record<string, string>; live: string };
  let setTables: IptablesRuleset;

  beforeAll(async () => {
    setTables = renderIptables(policy());
    linear = await run(renderIptables(policy(), { ipsetThreshold: Infinity }));
    sets = await run(setTables);
  }, 60000);

  it('the two forms really differ: four sets and no per-address rule in one, forty rules per family in the other', () => {
    expect(setTables.ipsets?.match(/^create \S+/gm)).toEqual(['create tw4-in-tcp-22', 'create tw4-out-udp-53', 'create tw6-in-tcp-22', 'create tw6-out-udp-53']);
    expect(sets.live.match(/--match-set/g)).toHaveLength(4);
    expect(sets.live).not.toContain(`-s ${admin4(0)}/32`);
    expect(linear.live).not.toContain('--match-set');
    expect(linear.live.match(/^-A tw-(in|out) /gm)).toHaveLength(4 * N);
  });

  it('every probe has the outcome the policy says, in the linear form', () => {
    for (const c of CASES) {
      const expected = c.admitted ? 'ok' : c.probe.kind === 'udp' ? 'eperm' : 'timeout';
      expect({ id: c.probe.id, outcome: linear.outcomes[c.probe.id] }).toEqual({ id: c.probe.id, outcome: expected });
    }
  });

  it('the ipset form admits exactly the same traffic, probe for probe', () => {
    expect(sets.outcomes).toEqual(linear.outcomes);
    expect(Object.values(sets.outcomes).filter((o) => o === 'ok')).toHaveLength(CASES.filter((c) => c.admitted).length);
  });
});
