/**
 * First-class attachment (issue #12): `host.attachTo(instance | launchTemplate)` sets every
 * security group id and the user-data in one call, lazily (grants declared later still reach
 * it), refuses targets with user-data or groups of their own, and the CLI names the result by
 * its twinwall host name (or its resource address, or its construct path).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Testing } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { FilteredHost } from '../constructs';
import { Peer, Port, dnsClient, sshAdmin, webServer } from '../lib';
import { checkStacks, readStack } from '../lib/check';
import { Json, writeStacks } from './support/artefacts';
import { hostNames } from '../lib/check/terraform';
import { caught } from './support/caught';

const VPC = 'vpc-0123456789abcdef0';
const AMI = 'ami-0123456789abcdef0';
const ADMINS = [Peer.ipv4('192.0.2.0/24')];
const BIN = path.join(__dirname, '..', 'scripts', 'twinwall-dev.js');

function stack(build: (scope: Construct) => void): Json {
  return JSON.parse(Testing.synthScope(build));
}

/** web on the user's own instance, workers on the user's own launch template; the grant comes last. */
function ownResources(scope: Construct): { web: FilteredHost; workers: FilteredHost } {
  const web = new FilteredHost(scope, 'web', { vpcId: VPC, roles: [webServer(), sshAdmin({ from: ADMINS }), dnsClient()], addresses: ['10.0.1.0/24'] });
  const workers = new FilteredHost(scope, 'workers', { vpcId: VPC, roles: [sshAdmin({ from: ADMINS })], addresses: ['10.0.2.0/24'] });
  web.attachTo(new Instance(scope, 'web-instance', { ami: AMI, instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' }));
  workers.attachTo(new LaunchTemplate(scope, 'workers-template', { imageId: AMI, instanceType: 't3.micro' }));
  // After the attachment: the lazy ids and user-data still carry it.
  web.allowTo(workers, Port.tcp(9000), 'hand jobs to the workers');
  return { web, workers };
}

describe('attachTo', () => {
  let hosts: { web: FilteredHost; workers: FilteredHost } | undefined;
  const tf = stack((s) => {
    hosts = ownResources(s);
  });
  const { web, workers } = hosts as { web: FilteredHost; workers: FilteredHost };

  it('sets every group id and the user-data of an instance, replaced on change', () => {
    const [name, instance] = Object.entries(tf.resource.aws_instance as Record<string, Json>)[0];
    expect(name).toMatch(/^web-instance/);
    expect(instance.vpc_security_group_ids).toEqual([expect.stringMatching(/^\$\{aws_security_group\.web_SecurityGroup_\w+\.id\}$/)]);
    expect(instance.user_data_base64).toBe(web.rendering.userData.base64);
    expect(instance.user_data_replace_on_change).toBe(true);
    expect(instance).not.toHaveProperty('user_data');
  });

  it('sets the groups and the (base64) user_data of a launch template', () => {
    const template = Object.values(tf.resource.aws_launch_template as Record<string, Json>)[0];
    expect(template.vpc_security_group_ids).toEqual([expect.stringMatching(/^\$\{aws_security_group\.workers_SecurityGroup_\w+\.id\}$/)]);
    expect(template.user_data).toBe(workers.rendering.userData.base64);
  });

  it('carries a grant declared after the attachment, and the walls agree', () => {
    expect(web.rendering.iptables.v4).toMatch(/-A tw-out .*-d 10\.0\.2\.0\/24 .*--dport 9000 /);
    expect(workers.rendering.iptables.v4).toMatch(/-A tw-in .*-s 10\.0\.1\.0\/24 .*--dport 9000 /);
    const report = checkStacks([{ name: 'stack', json: tf }]);
    expect(report.problems).toEqual([]);
    expect(report.hosts.map((h) => [h.label, h.findings.map((f) => f.text)])).toEqual([
      ['stack/web', []],
      ['stack/workers', []],
    ]);
  });

  it('names the user\'s resources by their twinwall host, and explain finds them by name, address or construct path', () => {
    const artefacts = readStack('mine', tf);
    expect(artefacts.map((a) => [a.name, a.address.split('.')[0]])).toEqual([
      ['web', 'aws_instance'],
      ['workers', 'aws_launch_template'],
    ]);
    const dir = writeStacks([{ name: 'mine', json: tf }]);
    try {
      const instance = artefacts[0];
      for (const host of ['web', 'mine/web', instance.address, `mine/${instance.address}`]) {
        const r = spawnSync(process.execPath, [BIN, 'explain', dir, host, 'ingress', 'tcp/443', '203.0.113.9'], { encoding: 'utf8' });
        expect({ host, code: r.status, stderr: r.stderr }).toEqual({ host, code: 0, stderr: '' });
        expect(r.stdout).toMatch(/mine\/web/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // cdktf synth records the construct path of each resource ("//" metadata; Testing drops it).
    expect(hostNames({ ...artefacts[0], path: 'mine/web-instance' })).toContain('mine/web-instance');
  });

  it('refuses a target with user-data or security groups of its own', () => {
    const refused = (build: (s: Construct, h: FilteredHost) => void) =>
      caught(() =>
        stack((s) => {
          build(s, new FilteredHost(s, 'h', { vpcId: VPC, roles: [sshAdmin({ from: ADMINS })] }));
        }),
      );
    const base = { ami: AMI, instanceType: 't3.micro' };
    const plain = refused((s, h) => h.attachTo(new Instance(s, 'i', { ...base, userData: '#cloud-config\n' })));
    expect(plain.message).toContain('TW229 HOST_WALL_NOT_ATTACHED at stack/h: the aws_instance stack/i already has user-data of its own');
    expect(refused((s, h) => h.attachTo(new Instance(s, 'i', { ...base, userDataBase64: 'I2Nsb3VkLWNvbmZpZwo=' }))).errorName).toBe('HOST_WALL_NOT_ATTACHED');
    const groups = refused((s, h) => h.attachTo(new Instance(s, 'i', { ...base, vpcSecurityGroupIds: [new SecurityGroup(s, 'other', { vpcId: VPC }).id] })));
    expect(groups.message).toContain('already lists security groups of its own');
    expect(groups.message).toContain('Fix: leave vpc_security_group_ids unset');
    expect(refused((s, h) => h.attachTo(new LaunchTemplate(s, 't', { userData: 'x' }))).errorName).toBe('HOST_WALL_NOT_ATTACHED');
    expect(refused((_s, h) => h.attachTo({} as Instance)).errorName).toBe('OPTION_INVALID');
  });
});
