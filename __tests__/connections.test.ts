/**
 * Grants between hosts (issue #12): `allowTo`, `allowFrom`, `allowInternally` and a host passed
 * where a Peer is. Each grant writes both walls of both hosts, composition happens at synth so
 * order and cycles do not matter, and what is synthesized passes `twinwall check`.
 */
import 'cdktf/lib/testing/adapters/jest';
import { App, Testing, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { FilteredHost } from '../constructs';
import { Port, customRole, dnsClient, serve, sshAdmin, webServer, Peer, ntpClient } from '../lib';
import { Grant, connectionFlows, endpointPeer } from '../lib/connections';
import { checkStacks } from '../lib/check';
import { caught } from './support/caught';

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };
const ADMINS = [Peer.ipv4('192.0.2.0/24')];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function synth(build: (scope: Construct) => void): Json {
  return JSON.parse(Testing.synthScope(build));
}

function host(scope: Construct, id: string, addresses?: string[], roles = [sshAdmin({ from: ADMINS })]): FilteredHost {
  return new FilteredHost(scope, id, { roles, vpcId: VPC, instance: INSTANCE, ...(addresses !== undefined ? { addresses } : {}) });
}

/** Every rule of the stack as "host direction proto/port peer", the peer a group's host name or a CIDR. */
function rules(tf: Json): string[] {
  const groups = tf.resource.aws_security_group as Record<string, Json>;
  const hostOf = (ref: string) => {
    const key = /aws_security_group\.([^.]+)\.id/.exec(ref)?.[1] as string;
    return `sg:${groups[key].tags['twinwall:host']}`;
  };
  const out: string[] = [];
  for (const direction of ['ingress', 'egress']) {
    for (const r of Object.values((tf.resource[`aws_vpc_security_group_${direction}_rule`] ?? {}) as Record<string, Json>)) {
      const peer = r.referenced_security_group_id !== undefined ? hostOf(r.referenced_security_group_id) : (r.cidr_ipv4 ?? r.cidr_ipv6);
      out.push(`${hostOf(r.security_group_id).slice(3)} ${direction} ${r.ip_protocol}/${r.from_port ?? ''} ${peer} [${r.tags?.['twinwall:host-cidrs'] ?? ''}]`);
    }
  }
  return out.sort();
}

function checkClean(tf: Json): void {
  const report = checkStacks([{ name: 'stack', json: tf }]);
  expect(report.problems).toEqual([]);
  for (const h of report.hosts) expect({ host: h.host, findings: h.findings.map((f) => f.text) }).toEqual({ host: h.host, findings: [] });
}

describe('grants between hosts', () => {
  const webToApp = [
    'app ingress tcp/8080 sg:web [10.0.1.0/24]',
    'web egress tcp/8080 sg:app [10.0.2.0/24]',
  ];

  it('allowTo writes an egress rule on the granting host and an ingress rule on the other, referencing each other\'s group', () => {
    const tf = synth((s) => {
      const web = host(s, 'web', ['10.0.1.0/24']);
      const app = host(s, 'app', ['10.0.2.0/24']);
      web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
    });
    expect(rules(tf).filter((r) => r.includes('8080'))).toEqual(webToApp);
    checkClean(tf);
  });

  it('does not depend on the order of hosts, grants and roles: allowTo, allowFrom, either host first', () => {
    const variants = [
      (s: Construct) => {
        const web = host(s, 'web', ['10.0.1.0/24']);
        const app = host(s, 'app', ['10.0.2.0/24']);
        web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
      },
      (s: Construct) => {
        const app = host(s, 'app', ['10.0.2.0/24']);
        const web = host(s, 'web', ['10.0.1.0/24']);
        app.allowFrom(web, 'http-alt', 'proxy requests to the app tier');
      },
    ];
    const [a, b] = variants.map((v) => synth(v));
    expect(rules(b)).toEqual(rules(a));
    // Same rule resources (ids from content), same user-data per host.
    const userData = (tf: Json) => Object.fromEntries(Object.values(tf.resource.aws_instance as Record<string, Json>).map((i) => [i.tags.Name, i.user_data_base64]));
    expect(userData(b)).toEqual(userData(a));
    expect(Object.keys(b.resource.aws_vpc_security_group_ingress_rule).sort()).toEqual(Object.keys(a.resource.aws_vpc_security_group_ingress_rule).sort());
  });

  it('host walls match the other host\'s declared addresses, in both directions', () => {
    let web: FilteredHost | undefined;
    let app: FilteredHost | undefined;
    synth((s) => {
      web = host(s, 'web', ['10.0.1.0/24']);
      app = host(s, 'app', ['10.0.2.0/24']);
      web.allowTo(app, Port.tcp(8080), 'proxy requests to the app tier');
    });
    const out = (web as FilteredHost).rendering.iptables.v4.split('\n').filter((l) => l.startsWith('-A tw-out') && l.includes('--dport 8080'));
    expect(out).toHaveLength(1);
    expect(out[0]).toContain('-d 10.0.2.0/24');
    const inn = (app as FilteredHost).rendering.iptables.v4.split('\n').filter((l) => l.startsWith('-A tw-in') && l.includes('--dport 8080'));
    expect(inn).toHaveLength(1);
    expect(inn[0]).toContain('-s 10.0.1.0/24');
    expect((app as FilteredHost).policy.roles.map((r) => r.name)).toContain('connections');
  });

  it('a cycle works: A calls B and B calls A', () => {
    const tf = synth((s) => {
      const a = host(s, 'a', ['10.0.1.0/24']);
      const b = host(s, 'b', ['10.0.2.0/24']);
      a.allowTo(b, Port.tcp(9000), 'a calls b');
      b.allowTo(a, Port.tcp(9001), 'b calls a');
    });
    expect(rules(tf).filter((r) => /900[01]/.test(r))).toEqual([
      'a egress tcp/9000 sg:b [10.0.2.0/24]',
      'a ingress tcp/9001 sg:b [10.0.2.0/24]',
      'b egress tcp/9001 sg:a [10.0.1.0/24]',
      'b ingress tcp/9000 sg:a [10.0.1.0/24]',
    ]);
    checkClean(tf);
  });

  it('a group of identical hosts grants itself: its own group on the network wall, its addresses on the host wall', () => {
    let cluster: FilteredHost | undefined;
    const tf = synth((s) => {
      cluster = host(s, 'cluster', ['10.0.4.10/32', '10.0.4.11/32', '10.0.4.12/32']);
      cluster.allowInternally(Port.tcpRange(7000, 7001), 'gossip between cluster members');
    });
    expect(rules(tf).filter((r) => r.includes('7000'))).toEqual([
      'cluster egress tcp/7000 sg:cluster [10.0.4.10/32 10.0.4.11/32 10.0.4.12/32]',
      'cluster ingress tcp/7000 sg:cluster [10.0.4.10/32 10.0.4.11/32 10.0.4.12/32]',
    ]);
    const v4 = (cluster as FilteredHost).rendering.iptables.v4.split('\n').filter((l) => l.includes('7000:7001'));
    expect(v4.filter((l) => l.startsWith('-A tw-in'))).toHaveLength(3);
    expect(v4.filter((l) => l.startsWith('-A tw-out'))).toHaveLength(3);
    checkClean(tf);
  });

  it('a host is accepted wherever a peer is: sshAdmin({ from: [bastion] }) also lets the bastion out', () => {
    const tf = synth((s) => {
      const bastion = host(s, 'bastion', ['10.0.0.10/32']);
      host(s, 'db', ['10.0.3.0/24'], [sshAdmin({ from: [bastion] }), dnsClient()]);
      host(s, 'web', ['10.0.1.0/24'], [webServer(), sshAdmin({ from: [bastion] })]);
    });
    expect(rules(tf).filter((r) => r.includes('tcp/22 sg:'))).toEqual([
      'bastion egress tcp/22 sg:db [10.0.3.0/24]',
      'bastion egress tcp/22 sg:web [10.0.1.0/24]',
      'db ingress tcp/22 sg:bastion [10.0.0.10/32]',
      'web ingress tcp/22 sg:bastion [10.0.0.10/32]',
    ]);
    checkClean(tf);
  });

  it('a grant to a host without addresses fails at synth, naming the host and the fix', () => {
    const err = caught(() =>
      synth((s) => {
        const web = host(s, 'web', ['10.0.1.0/24']);
        const app = host(s, 'app');
        web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
      }),
    );
    expect(err.errorName).toBe('GRANT_NO_ADDRESSES');
    expect(err.message).toContain('TW226 GRANT_NO_ADDRESSES at stack/web');
    expect(err.message).toContain('the grant web → app http-alt reaches the host "app" (stack/app), which declares no addresses');
    expect(err.message).toContain('Fix: give stack/app the addresses its members use: `addresses: ["10.0.2.0/24"]`');
  });

  it('a grant after the host was read is refused (TW227): a read policy never changes', () => {
    synth((s) => {
      const web = host(s, 'web', ['10.0.1.0/24']);
      const app = host(s, 'app', ['10.0.2.0/24']);
      expect(app.rendering.securityGroups.rules.some((r) => r.toPort === 8080)).toBe(false);
      const err = caught(() => web.allowTo(app, 'http-alt', 'proxy requests to the app tier'));
      expect(err.message).toContain('TW227 HOST_FINAL at stack/web');
      expect(err.message).toContain('the policy of host "app" (stack/app) is already final (a read of rendering composed it)');
      // Nothing was recorded on either side.
      expect(web.policy.roles.map((r) => r.name)).not.toContain('connections');
    });
  });

  it('userDataBase64 and securityGroupIds are lazy: read before a grant, they still carry it', () => {
    const tf = synth((s) => {
      const web = host(s, 'web', ['10.0.1.0/24']);
      const app = new FilteredHost(s, 'app', { roles: [sshAdmin({ from: ADMINS })], vpcId: VPC, addresses: ['10.0.2.0/24'] });
      const ids = app.securityGroupIds;
      const userData = app.userDataBase64;
      web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
      new (require('@cdktf/provider-aws/lib/instance').Instance)(s, 'mine', { ...INSTANCE, vpcSecurityGroupIds: [...ids], userDataBase64: userData });
    });
    const mine = tf.resource.aws_instance.mine;
    const text = Buffer.from(mine.user_data_base64, 'base64');
    // The grant is in the host wall (the default backend's: nftables).
    expect(require('zlib').gunzipSync(text).toString('utf8')).toContain('ip saddr 10.0.1.0/24 tcp dport 8080 ct state new accept');
    checkClean(tf);
  });

  it('refuses a grant to something that is not a host of the same stack', () => {
    const app = new App();
    const one = new TerraformStack(app, 'one');
    const two = new TerraformStack(app, 'two');
    const a = host(one, 'a', ['10.0.1.0/24']);
    const b = host(two, 'b', ['10.0.2.0/24']);
    expect(caught(() => a.allowTo(b, 'ssh', 'admin')).message).toContain('TW228 GRANT_INVALID at one/a: the host two/b is in another stack');
    expect(caught(() => a.allowTo({} as FilteredHost, 'ssh', 'admin')).errorName).toBe('GRANT_INVALID');
    expect(caught(() => a.allowInternally('gopher' as never, 'admin')).errorName).toBe('UNKNOWN_SERVICE');
    expect(caught(() => a.allowInternally(Port.tcp(1), ' ')).errorName).toBe('REASON_MISSING');
  });
});

describe('the pure model (lib/connections.ts)', () => {
  const web = { name: 'web', path: 's/web', groupId: 'sg-1', addresses: ['10.0.1.0/24'] };
  const app = { name: 'app', path: 's/app', groupId: 'sg-2', addresses: ['10.0.2.0/24'] };

  it('gives each side its flow, and only that side for a one-sided grant', () => {
    const g = Grant.of(web, app, 'dns', 'lookups');
    expect(connectionFlows(web, [g]).map(String)).toEqual(['egress udp/53 to app hosts', 'egress tcp/53 to app hosts']);
    expect(connectionFlows(app, [g]).map(String)).toEqual(['ingress udp/53 from web hosts', 'ingress tcp/53 from web hosts']);
    expect(connectionFlows(web, [Grant.of(web, app, Port.tcp(1), 'x', 'to')])).toEqual([]);
    expect(connectionFlows(app, [Grant.of(web, app, Port.tcp(1), 'x', 'from')])).toEqual([]);
    expect(connectionFlows({ ...web, name: 'other' }, [g])).toEqual([]);
  });

  it('a host without addresses is no peer', () => {
    expect(caught(() => endpointPeer({ name: 'x', path: 's/x', groupId: 'sg-3' })).errorName).toBe('GRANT_NO_ADDRESSES');
    expect(endpointPeer(app).hostCidrs.map((c) => c.text)).toEqual(['10.0.2.0/24']);
  });

  it('serve and use accept a host (anything with toPeer)', () => {
    const peer = Peer.ipv4('10.9.0.0/16');
    const flows = serve('ssh', [{ toPeer: () => peer }]);
    expect(flows[0].peer).toBe(peer);
    expect(caught(() => customRole('x', [...serve('ssh', [{} as Peer])])).errorName).toBe('OPTION_INVALID');
    expect(ntpClient({ servers: [{ toPeer: () => peer }] }).flows[0].peer).toBe(peer);
  });
});
