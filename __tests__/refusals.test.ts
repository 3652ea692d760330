/**
 * Safer defaults refused at synth (issue #12): a host's group without its user-data (or with it
 * as `user_data`), two hosts with one name in a stack, port 0, and egress to anywhere on a worm
 * port (TWL011, an error unless suppressed with a reason). Each names code, path, value and fix.
 */
import { App, Testing, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { FilteredHost } from '../constructs';
import { Flow, Peer, Port, customRole, ntpClient, sshAdmin } from '../lib';
import { lintStack } from '../constructs/lint';
import { caught } from './support/caught';

const VPC = 'vpc-0123456789abcdef0';
const INSTANCE = { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' };

function synth(build: (s: Construct) => void): string {
  return Testing.synthScope(build);
}

describe('a host\'s security group without its user-data is refused at synth (TW229)', () => {
  it('no user-data at all', () => {
    const err = caught(() =>
      synth((s) => {
        const h = new FilteredHost(s, 'web', { vpcId: VPC, roles: [ntpClient()] });
        new Instance(s, 'mine', { ...INSTANCE, vpcSecurityGroupIds: [h.securityGroup.id] });
      }),
    );
    expect(err.message).toMatch(/^TW229 HOST_WALL_NOT_ATTACHED at stack\/web: aws_instance\.mine \(stack\/mine\) carries the security group of host stack\/web but no user-data, so it would boot without the host wall\. Fix: attach both walls with host\.attachTo\(instance\)/);
    expect(err.value).toMatch(/^aws_instance\.mine/);
  });

  it('the host wall passed as user_data instead of user_data_base64', () => {
    const err = caught(() =>
      synth((s) => {
        const h = new FilteredHost(s, 'web', { vpcId: VPC, roles: [ntpClient()] });
        new Instance(s, 'mine', { ...INSTANCE, vpcSecurityGroupIds: [...h.securityGroupIds], userData: h.cloudConfig });
      }),
    );
    expect(err.errorName).toBe('HOST_WALL_NOT_ATTACHED');
    expect(err.message).toContain('but passes user-data as `user_data`, which Terraform interpolates');
  });

  it('another user-data on a launch template', () => {
    const err = caught(() =>
      synth((s) => {
        const h = new FilteredHost(s, 'web', { vpcId: VPC, roles: [ntpClient()] });
        new LaunchTemplate(s, 'tpl', { imageId: INSTANCE.ami, vpcSecurityGroupIds: [...h.securityGroupIds], userData: Buffer.from('#!/bin/sh\n').toString('base64') });
      }),
    );
    expect(err.message).toMatch(/aws_launch_template\.tpl \(stack\/tpl\) carries the security group of host stack\/web but another user-data than the host's/);
  });

  it('is satisfied by the host\'s own user-data, passed by hand or with attachTo, and leaves a template-fed instance to the template', () => {
    const json = synth((s) => {
      const h = new FilteredHost(s, 'web', { vpcId: VPC, roles: [ntpClient()] });
      new Instance(s, 'byHand', { ...INSTANCE, vpcSecurityGroupIds: [...h.securityGroupIds], userDataBase64: h.userDataBase64 });
      h.attachTo(new Instance(s, 'attached', INSTANCE));
      new Instance(s, 'fromTemplate', { ...INSTANCE, vpcSecurityGroupIds: [...h.securityGroupIds], launchTemplate: { name: 'elsewhere' } });
    });
    expect(Object.keys(JSON.parse(json).resource.aws_instance).length).toBe(3);
  });
});

describe('two hosts with one name in a stack are refused (TW230)', () => {
  it('by name, wherever they sit in the construct tree', () => {
    const err = caught(() =>
      synth((s) => {
        new FilteredHost(new Construct(s, 'a'), 'web', { vpcId: VPC, roles: [ntpClient()] });
        new FilteredHost(new Construct(s, 'b'), 'web', { vpcId: VPC, roles: [ntpClient()] });
      }),
    );
    expect(err.message).toBe(
      'TW230 HOST_NAME_DUPLICATE at stack/b/web: the host name "web" is already taken in this stack by stack/a/web; check, report, explain and diff name hosts by it, so they could not tell the two apart. Fix: give one of them its own name (the `name` prop, or another construct id).',
    );
    expect(caught(() => synth((s) => [new FilteredHost(s, 'one', { vpcId: VPC, roles: [ntpClient()], name: 'x' }), new FilteredHost(s, 'two', { vpcId: VPC, roles: [ntpClient()], name: 'x' })])).errorName).toBe('HOST_NAME_DUPLICATE');
  });

  it('while one name in two stacks is fine', () => {
    const app = new App();
    for (const name of ['staging', 'production']) new FilteredHost(new TerraformStack(app, name), 'web', { vpcId: VPC, roles: [ntpClient()] });
  });
});

describe('port 0 is refused (TW114)', () => {
  it('tcp and udp port 0 alone, not a range starting at 0', () => {
    expect(caught(() => Port.tcp(0)).message).toContain('TW114 PORT_ZERO: "tcp/0" is TCP port 0');
    expect(caught(() => Port.udpRange(0, 0)).errorName).toBe('PORT_ZERO');
    expect(Port.tcpRange(0, 1023).toString()).toBe('tcp/0-1023');
  });
});

describe('egress to anywhere on a worm port (TWL011)', () => {
  const findings = (port: Port, peer: Peer, suppress?: string) => {
    const stack = new TerraformStack(new App(), 'stack');
    new FilteredHost(stack, 'h', {
      vpcId: VPC,
      roles: [sshAdmin({ from: [Peer.ipv4('192.0.2.0/24')] }), customRole('client', [Flow.egress(port, peer, 'the vendor says so')])],
      ...(suppress !== undefined ? { suppressions: [{ id: 'TWL011', reason: suppress }] } : {}),
    });
    return lintStack(stack).flatMap((h) => h.findings.filter((f) => f.id === 'TWL011'));
  };

  it.each([
    [Port.udp(1434), 'udp/1434 (SQL Server resolution (Slammer))'],
    [Port.tcp(445), 'tcp/445 (SMB (WannaCry))'],
    [Port.tcpRange(130, 140), 'tcp/135-139 (RPC and NetBIOS (Blaster))'],
    [Port.udp(137), 'udp/135-139 (RPC and NetBIOS)'],
    [Port.tcp(23), 'tcp/23 (telnet (Mirai))'],
    [Port.udp(69), 'udp/69 (TFTP)'],
  ])('%s to any IPv4 is an error naming the port', (port, text) => {
    const hits = findings(port, Peer.anyIpv4());
    expect(hits.map((f) => [f.level, f.suppressed])).toEqual([['error', undefined]]);
    expect(hits[0].message).toContain(`reaches ${text}, which worms use to spread`);
  });

  it('to IPv6 anywhere too; not to a narrow peer, nor on another port; suppressed with a reason it stays visible', () => {
    expect(findings(Port.tcp(445), Peer.anyIpv6())).toHaveLength(1);
    expect(findings(Port.tcp(445), Peer.ipv4('10.0.0.0/16'))).toEqual([]);
    expect(findings(Port.tcp(443), Peer.anyIpv4())).toEqual([]);
    const suppressed = findings(Port.udp(1434), Peer.anyIpv4(), 'legacy SQL browser discovery, removed in Q3');
    expect(suppressed.map((f) => f.suppressed)).toEqual([{ reason: 'legacy SQL browser discovery, removed in Q3' }]);
  });

  it('fails cdktf synth (an error annotation) unless suppressed', () => {
    const appWith = (suppressions: { id: 'TWL011'; reason: string }[]) => {
      const app = Testing.app();
      const stack = new TerraformStack(app, 'worm');
      new AwsProvider(stack, 'aws', { region: 'eu-central-1' });
      new FilteredHost(stack, 'h', { vpcId: VPC, suppressions, roles: [customRole('client', [Flow.egress(Port.udp(1434), Peer.anyIpv4(), 'find SQL Server instances')])] });
      return app;
    };
    expect(() => appWith([]).synth()).toThrow(/\[worm\/h\] twinwall lint TWL011 /);
    expect(() => appWith([{ id: 'TWL011', reason: 'legacy SQL browser discovery, removed in Q3' }]).synth()).not.toThrow();
  });
});
