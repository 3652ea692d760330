/**
 * The boot tier's judge on hand-made serial logs (fast, in every `npm test`): each problem it
 * must report, and that a boot which fails closed as expected is judged healthy. The boot tier
 * itself (boot.test.ts) holds real boots to the same judge; these cases cover the mistakes no
 * longer booted for real (a unit nothing enables) and every branch of the fail-closed rules.
 */
import { BootReport, Expected, judgeBoot, judgeNftRuleset, parseSerialLog } from './support/boot/report';

const V4 = ['*filter', ':INPUT DROP', ':FORWARD DROP', ':OUTPUT DROP', '-A INPUT -i lo -j ACCEPT', 'COMMIT'];
const V6 = ['*filter', ':INPUT DROP', ':FORWARD DROP', ':OUTPUT DROP', '-A INPUT -i lo -j ACCEPT', '-A INPUT -p ipv6-icmp -j ACCEPT', 'COMMIT'];
const FALLBACK4 = ['*filter', ':INPUT DROP', ':FORWARD DROP', ':OUTPUT DROP', '-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 22 -j ACCEPT', 'COMMIT'];
const FAILED4 = 'twinwall (sample): FAILED to load the host firewall (start) for: IPv4; at boot they keep the fallback (…).';

interface Parts {
  console?: string[];
  iptables?: string[];
  ip6tables?: string[];
  status?: string;
  errors?: string[];
  enabled?: string;
  active?: string;
  result?: string;
  timestamps?: Record<string, Record<string, string>>;
  journal?: string[];
  problems?: string[];
  cycles?: string[];
  /** `nft -n list ruleset` (an nftables host); the section is left out when undefined. */
  nft?: string[];
}

/** A serial log as the guest's report script prints it. */
function serial(p: Parts): string {
  const section = (name: string, body: string[]): string[] => [`=== twinwall-boot BEGIN ${name} ===`, ...body, `=== twinwall-boot END ${name} rc=0 ===`];
  const times = p.timestamps ?? {
    'twinwall-firewall.service': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '2000000' },
    'network-pre.target': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '2500000' },
    'networking.service': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '5000000' },
    'cloud-init.service': { LoadState: 'loaded', ActiveState: 'active', InactiveExitTimestampMonotonic: '6000000' },
    'cloud-init-network.service': { LoadState: 'not-found', ActiveState: 'inactive' },
  };
  return [
    ...(p.console ?? ['[    1.0] booting']),
    '=== twinwall-boot REPORT BEGIN ===',
    ...section('instance-id', ['i-test']),
    ...section('iptables-save', p.iptables ?? V4),
    ...section('ip6tables-save', p.ip6tables ?? V6),
    ...(p.nft === undefined ? [] : section('nft-ruleset', p.nft)),
    ...section('cloud-init-status', [`status: ${p.status ?? 'done'}`]),
    ...section('cloud-init-result', [JSON.stringify({ v1: { datasource: 'NoCloud', errors: p.errors ?? [] } })]),
    ...section('cloud-init-problems', p.problems ?? []),
    ...section('ordering-cycles', p.cycles ?? []),
    ...section('firewall-enabled', [p.enabled ?? 'enabled']),
    ...section('firewall-active', [p.active ?? 'active']),
    ...section('firewall-result', [p.result ?? 'Result=success', 'ExecMainStatus=0']),
    ...section(
      'timestamps',
      Object.entries(times).flatMap(([id, f]) => [`Id=${id}`, ...Object.entries(f).map(([k, v]) => `${k}=${v}`), '']),
    ),
    ...section('journal', p.journal ?? ['[    7.000000] guest sh[100]: twinwall (sample): host firewall loaded (first boot)']),
    ...section('uptime', ['30.00 10.00']),
    '=== twinwall-boot REPORT END ===',
  ].join('\n');
}

const healthy: Expected = { v4: V4, v6: V6, instanceId: 'i-test', failing: [], host: 'sample' };
const judge = (p: Parts, boot: 1 | 2, expected: Expected = healthy) => judgeBoot(parseSerialLog(serial(p)), expected, boot);

/** Unit times of a boot whose load failed: the unit `failed`, bootcmd failed so cloud-init's network stage exited 1 (it ran). */
const FAILED_UNIT_TIMES = {
  'twinwall-firewall.service': { LoadState: 'loaded', ActiveState: 'failed', InactiveExitTimestampMonotonic: '1900000', ActiveEnterTimestampMonotonic: '0' },
  'network-pre.target': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '2500000' },
  'networking.service': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '5000000' },
  'cloud-init.service': { LoadState: 'loaded', ActiveState: 'failed', InactiveExitTimestampMonotonic: '6000000' },
};

/**
 * A host that failed closed, its loader printing `line`, with `walls` loaded: the first boot
 * (cloud-init reports the failed bootcmd, the console and the journal carry the line) and the
 * next boot (cloud-init-per records its semaphore whatever the exit status, so the first-boot
 * load does not run again: cloud-init is healthy, and the unit alone reports the failure).
 */
function failedClosed(line: string, walls: Parts): { closed: Parts; later: Parts } {
  const closed: Parts = {
    console: ['[    2.0] boot', line],
    status: 'error',
    errors: ["('bootcmd', ProcessExecutionError('Unexpected error while running command.'))", "('scripts_user', RuntimeError('Runparts: 1 failures'))"],
    active: 'failed',
    result: 'Result=exit-code',
    timestamps: FAILED_UNIT_TIMES,
    journal: [`[    2.100000] guest twinwall-firewall-load[90]: ${line}`, `[    7.000000] guest cloud-init[300]: ${line}`],
    problems: ['2026-01-01 00:00:07,000 - util.py[WARNING]: Failed running bootcmd: Unexpected error while running command.', '2026-01-01 00:00:07,100 - cc_scripts_user.py[WARNING]: Failed to run module scripts_user'],
    ...walls,
  };
  const later: Parts = {
    ...closed,
    status: 'done',
    errors: [],
    problems: [],
    timestamps: { ...FAILED_UNIT_TIMES, 'cloud-init.service': { LoadState: 'loaded', ActiveState: 'active', InactiveExitTimestampMonotonic: '6000000' } },
    journal: [`[    2.100000] guest twinwall-firewall-load[90]: ${line}`],
  };
  return { closed, later };
}

describe('the boot judge', () => {
  it('a healthy first boot has no problems and measures the first-boot window', () => {
    const j = judge({}, 1);
    expect(j.problems).toEqual([]);
    expect(j.facts.firstBootWindow).toBeCloseTo(2, 5);
  });

  describe("the user's own user-data parts (fixture user-parts)", () => {
    const evidence = ["twinwall boot fixture: the user cloud-config part's runcmd ran on sample", "twinwall boot fixture: the user script ran; its file says: written by the user's cloud-config part"];
    const withParts: Expected = { ...healthy, userEvidence: evidence };
    const loaded = '[    7.000000] guest sh[100]: twinwall (sample): host firewall loaded (first boot)';

    it('a first boot whose parts printed their lines (journal, or console) and whose wall loaded exactly has no problems', () => {
      expect(judge({ journal: [loaded, `[   20.000000] guest cloud-init[300]: ${evidence[0]}`, `[   21.000000] guest cloud-init[300]: ${evidence[1]}`] }, 1, withParts).problems).toEqual([]);
      expect(judge({ journal: [loaded, `[   20.000000] guest cloud-init[300]: ${evidence[0]}`], console: [`[   21.5] cloud-init[300]: ${evidence[1]}`] }, 1, withParts).problems).toEqual([]);
    });

    it('a part that did not run is a problem naming its line; so is a wall that did not load exactly, with the parts run', () => {
      expect(judge({ journal: [loaded, `[   20.000000] guest cloud-init[300]: ${evidence[0]}`] }, 1, withParts).problems).toEqual([
        `first boot: the user's own user-data part did not run: neither the journal nor the console shows ${JSON.stringify(evidence[1])}`,
      ]);
      const ran = [loaded, ...evidence.map((e, i) => `[   2${i}.000000] guest cloud-init[300]: ${e}`)];
      expect(judge({ journal: ran, iptables: [...V4.slice(0, -1), '-A INPUT -j ACCEPT', 'COMMIT'] }, 1, withParts).problems).toEqual([
        expect.stringMatching(/^IPv4: the loaded rules are not the synthesized ones: first difference at line 6/),
      ]);
    });

    it('the second boot needs no line (the parts run once per instance)', () => {
      expect(judge({ journal: [] }, 2, withParts).problems).toEqual([]);
    });
  });

  it('reads the console apart from the report', () => {
    const r: BootReport = parseSerialLog(serial({ console: ['line one', 'line two'] }));
    expect(r.console).toBe('line one\nline two');
    expect(r.complete).toBe(true);
  });

  it('a unit nothing enabled: "disabled", and at the next boot nothing loaded it', () => {
    const j = judge({ enabled: 'disabled', active: 'inactive', iptables: [], ip6tables: [], timestamps: {}, journal: [] }, 2);
    expect(j.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/twinwall-firewall\.service is "disabled", not enabled/),
        expect.stringMatching(/IPv4: the loaded rules are not the synthesized ones: nothing is loaded/),
        expect.stringMatching(/never became active/),
      ]),
    );
  });

  it('an ordering cycle in the journal', () => {
    expect(judge({ cycles: ['[ 3.0] systemd[1]: Job networking.service/start deleted to break ordering cycle starting with cloud-init.service/start'] }, 2).problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/ordering cycle/)]),
    );
  });

  it('trixie: the network stage is cloud-init-network.service; dropping it is a problem', () => {
    const times = {
      'twinwall-firewall.service': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '2000000' },
      'network-pre.target': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '2500000' },
      'networking.service': { LoadState: 'loaded', ActiveState: 'active', ActiveEnterTimestampMonotonic: '5000000' },
      'cloud-init.service': { LoadState: 'not-found', ActiveState: 'inactive' },
      'cloud-init-network.service': { LoadState: 'loaded', ActiveState: 'inactive' },
    };
    expect(judge({ timestamps: times }, 1).problems).toEqual([expect.stringMatching(/^cloud-init-network\.service \(cloud-init's network stage\) is inactive, not active/)]);
  });

  it('a boot that loads the wrong table, or leaves a policy ACCEPT, is a problem', () => {
    expect(judge({ iptables: FALLBACK4 }, 1).problems).toEqual([expect.stringMatching(/^IPv4: the loaded rules are not the synthesized ones: first difference at line 5/)]);
    expect(judge({ iptables: V4.map((l) => l.replace(':INPUT DROP', ':INPUT ACCEPT')) }, 1, { ...healthy, v4: V4.map((l) => l.replace(':INPUT DROP', ':INPUT ACCEPT')) }).problems).toEqual([
      'IPv4: built-in chain INPUT has policy ACCEPT, not DROP',
    ]);
  });

  describe('failing closed (a table that cannot load)', () => {
    const failing: Expected = { v4: FALLBACK4, v6: V6, instanceId: 'i-test', failing: ['IPv4'], host: 'sample' };
    const unitTimes = FAILED_UNIT_TIMES;
    const { closed, later } = failedClosed(FAILED4, { iptables: FALLBACK4 });

    it('the fallback loaded, the other family\'s table loaded, the unit failed, cloud-init and the console say so: no problem at the first boot', () => {
      expect(judge(closed, 1, failing).problems).toEqual([]);
    });

    // cloud-init-per records its semaphore whatever the exit status: the next boot does not run
    // the first-boot load again, cloud-init is healthy there, and the unit alone reports the failure.
    it('the next boot: the unit alone reports it, cloud-init is healthy; no problem', () => {
      expect(judge(later, 2, failing).problems).toEqual([]);
      expect(judge(later, 2, failing).facts.firewallUnitActiveAt).toBeCloseTo(2.1, 5);
      // cloud-init reporting an error at the next boot is a problem: something else failed.
      expect(judge({ ...later, status: 'error', errors: ["('bootcmd', ProcessExecutionError('x'))"] }, 2, failing).problems).toEqual(
        expect.arrayContaining([expect.stringMatching(/cloud-init status is error, not done/), expect.stringMatching(/cloud-init reported errors/)]),
      );
    });

    it('each missing sign of the failure is a problem', () => {
      const cases: [Parts, RegExp][] = [
        [{ ...closed, iptables: V4.map((l) => l.replace(':INPUT DROP', ':INPUT ACCEPT')) }, /IPv4: the loaded rules are not the synthesized ones/],
        [{ ...closed, status: 'done' }, /cloud-init status is done, not error/],
        [{ ...closed, errors: [] }, /cloud-init did not report the failed bootcmd load/],
        [{ ...closed, errors: [...(closed.errors as string[]), "('ssh', RuntimeError('x'))"] }, /cloud-init reported errors besides the failed load: \('ssh'/],
        [{ ...closed, active: 'active' }, /twinwall-firewall\.service is "active", not failed/],
        [{ ...closed, console: ['[ 2.0] boot'] }, /the console never showed the loader's failure line for IPv4/],
        [{ ...closed, journal: [] }, /the journal holds no failure line for IPv4/],
        [{ ...closed, result: 'Result=success' }, /did not fail with its exit code/],
        [{ ...closed, timestamps: { ...unitTimes, 'cloud-init.service': { LoadState: 'loaded', ActiveState: 'inactive' } } }, /cloud-init\.service \(cloud-init's network stage\) is inactive, not active or failed/],
        [{ ...closed, problems: ['2026-01-01 - cc_ssh.py[WARNING]: something else'] }, /cloud-init logged warnings or errors in this boot/],
      ];
      for (const [parts, pattern] of cases) expect(judge(parts, 1, failing).problems).toEqual(expect.arrayContaining([expect.stringMatching(pattern)]));
    });

    it('the failure line must name exactly the failing families', () => {
      const both = FAILED4.replace('for: IPv4;', 'for: IPv4 IPv6;');
      expect(judge({ ...closed, console: [both], journal: [`[ 2.100000] guest twinwall-firewall-load[90]: ${both}`] }, 1, failing).problems).toEqual(
        expect.arrayContaining([expect.stringMatching(/console never showed/), expect.stringMatching(/journal holds no failure line/)]),
      );
    });

    it('second boot: the unit must finish its load before network-pre.target', () => {
      const late = { ...later, journal: [`[    3.000000] guest twinwall-firewall-load[90]: ${FAILED4}`] };
      expect(judge(late, 2, failing).problems).toEqual([expect.stringMatching(/finished its load at 3\.000 s, after network-pre\.target at 2\.500 s/)]);
    });

    it('a healthy boot whose console shows a failed load is a problem', () => {
      expect(judge({ console: [FAILED4] }, 1).problems).toEqual([expect.stringMatching(/the console shows a failed load/)]);
    });
  });

  describe('an nftables host (hostFirewall nftables)', () => {
    // The wall as the renderer writes it, and as `nft -n list ruleset` prints it back (nft 1.0.6:
    // priority as a number, comments kept, no add/delete lines).
    const body = (admin: boolean, policy = 'drop'): string[] => [
      '\tchain input {',
      `\t\ttype filter hook input priority filter; policy ${policy};`,
      '\t\tiifname "lo" accept comment "twinwall: loopback"',
      '\t\tct state established,related accept',
      ...(admin ? ['\t\tip saddr 192.0.2.0/24 tcp dport 22 ct state new accept comment "sshAdmin/ssh: administration"'] : []),
      '\t}',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy drop;',
      '\t}',
      '\tchain output {',
      '\t\ttype filter hook output priority filter; policy drop;',
      '\t\toifname "lo" accept',
      '\t\tct state established,related accept',
      '\t}',
    ];
    const file = (admin: boolean): string => ['add table inet twinwall', 'delete table inet twinwall', 'table inet twinwall {', ...body(admin), '}', ''].join('\n');
    const listing = (admin: boolean, policy = 'drop'): string[] => ['table inet twinwall {', ...body(admin, policy).map((l) => l.replace('priority filter;', 'priority 0;')), '}'];
    const WALL = file(true);
    const FALLBACK = file(false);
    const nftHealthy: Expected = { v4: [], v6: [], nftables: WALL, instanceId: 'i-test', failing: [], host: 'sample' };
    const nftJudge = (p: Parts, boot: 1 | 2, expected: Expected = nftHealthy) => judge({ iptables: [], ip6tables: [], nft: listing(true), ...p }, boot, expected);

    it('the loaded table inet twinwall is the synthesized one, nothing else is loaded: no problem at either boot', () => {
      expect(nftJudge({}, 1).problems).toEqual([]);
      expect(nftJudge({ journal: [] }, 2).problems).toEqual([]);
      expect(judgeNftRuleset(listing(true).join('\n'), WALL)).toEqual([]);
    });

    it('another table beside twinwall\'s, or iptables rules, or no twinwall table, is a problem', () => {
      expect(nftJudge({ nft: [...listing(true), 'table ip filter {', '\tchain INPUT {', '\t\ttype filter hook input priority 0; policy accept;', '\t}', '}'] }, 1).problems).toEqual([
        'nftables: besides table inet twinwall, the ruleset holds table ip filter',
      ]);
      expect(nftJudge({ iptables: V4 }, 1).problems).toEqual([expect.stringMatching(/^IPv4: iptables-save shows iptables rules on an nftables host \(6 lines, first "\*filter"\)/)]);
      expect(nftJudge({ nft: [], journal: [] }, 2).problems).toEqual(['nftables: table inet twinwall is not loaded (nft list ruleset shows no table)']);
    });

    it('a table that means something else, or a policy accept, is a problem', () => {
      // The admin rule is IPv4 only: the IPv6 reading of both is the same.
      expect(nftJudge({ nft: listing(false) }, 1).problems).toEqual([expect.stringMatching(/^nftables: the loaded table inet twinwall \(IPv4\) is not the synthesized one: the checker reads /)]);
      expect(nftJudge({ nft: listing(true, 'accept') }, 1).problems).toEqual(expect.arrayContaining(["nftables: the input hook's base chain has policy accept, not policy drop"]));
    });

    it('a listing the checker cannot read is a problem, never agreement', () => {
      const counted = listing(true).map((l) => l.replace('iifname "lo" accept', 'iifname "lo" counter packets 3 bytes 180 accept'));
      expect(nftJudge({ nft: counted }, 1).problems).toEqual([expect.stringMatching(/^nftables: the checker cannot read the loaded table inet twinwall \(line \d+: /)]);
    });

    it('a report without the nft-ruleset section is a problem (an image without nft)', () => {
      expect(judge({ iptables: [], ip6tables: [] }, 1, nftHealthy).problems).toEqual(['the report has no nft-ruleset section: the image cannot list the nftables ruleset']);
    });

    describe('failing closed: nft refuses the wall, table inet twinwall keeps its fallback', () => {
      const FAILED = 'twinwall (sample): FAILED to load the host firewall (start) for: nftables; at boot the host keeps the fallback (…).';
      const failing: Expected = { ...nftHealthy, nftables: FALLBACK, failing: ['nftables'] };
      const { closed, later } = failedClosed(FAILED, { nft: listing(false) });

      it('the fallback loaded, the unit failed, cloud-init, the console and the journal say so: no problem at either boot', () => {
        expect(nftJudge(closed, 1, failing).problems).toEqual([]);
        expect(nftJudge(later, 2, failing).problems).toEqual([]);
      });

      it('the wall loaded after all, or a silent failure, is a problem', () => {
        expect(nftJudge({ ...closed, nft: listing(true) }, 1, failing).problems).toEqual(expect.arrayContaining([expect.stringMatching(/^nftables: the loaded table inet twinwall \(IPv4\) is not the synthesized one/)]));
        expect(nftJudge({ ...later, console: ['[ 2.0] boot'], journal: [] }, 2, failing).problems).toEqual(
          expect.arrayContaining([expect.stringMatching(/console never showed the loader's failure line for nftables/), expect.stringMatching(/journal holds no failure line for nftables/)]),
        );
        // A loader that names an iptables family instead is not this failure.
        const v4 = FAILED.replace('for: nftables;', 'for: IPv4;');
        expect(nftJudge({ ...closed, console: [v4], journal: [`[ 2.100000] guest twinwall-firewall-load[90]: ${v4}`] }, 1, failing).problems).toEqual(
          expect.arrayContaining([expect.stringMatching(/console never showed/)]),
        );
      });
    });
  });
});
