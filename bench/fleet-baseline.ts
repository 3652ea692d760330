/**
 * Child process of the synth benchmark: the baseline. A hand-written cdktf program that creates
 * the same security groups, rules and instances as the twinwall fleet, from literal data (the
 * values a person would type: ports, CIDRs, descriptions, the user-data), with no policy, no
 * normalisation and no rendering. The data file (argv[3]) is prepared before the timing starts.
 */
import * as fs from 'fs';
import { App, TerraformStack } from 'cdktf';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Construct } from 'constructs';
import { AMI, INSTANCE_TYPE, SUBNET_ID, VPC_ID } from './fleet';

export interface BaselineRule {
  readonly id: string;
  readonly direction: 'ingress' | 'egress';
  readonly ipProtocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly cidrIpv4?: string;
  readonly cidrIpv6?: string;
  readonly description: string;
}

export interface BaselineHost {
  readonly name: string;
  readonly roles: string;
  readonly rules: readonly BaselineRule[];
  readonly userDataBase64: string;
}

const started = process.hrtime.bigint();

function host(scope: Construct, h: BaselineHost): void {
  const node = new Construct(scope, h.name);
  const sg = new SecurityGroup(node, 'SecurityGroup', {
    namePrefix: `twinwall-${h.name}-`,
    description: `twinwall network wall of host ${h.name}`,
    vpcId: VPC_ID,
    tags: { Name: h.name, 'twinwall:host': h.name, 'twinwall:roles': h.roles },
    lifecycle: { createBeforeDestroy: true },
  });
  for (const r of h.rules) {
    const config = {
      securityGroupId: sg.id,
      description: r.description,
      ipProtocol: r.ipProtocol,
      ...(r.fromPort !== undefined ? { fromPort: r.fromPort } : {}),
      ...(r.toPort !== undefined ? { toPort: r.toPort } : {}),
      ...(r.cidrIpv4 !== undefined ? { cidrIpv4: r.cidrIpv4 } : {}),
      ...(r.cidrIpv6 !== undefined ? { cidrIpv6: r.cidrIpv6 } : {}),
    };
    if (r.direction === 'ingress') new VpcSecurityGroupIngressRule(node, r.id, config);
    else new VpcSecurityGroupEgressRule(node, r.id, config);
  }
  new Instance(node, 'Instance', {
    ami: AMI,
    instanceType: INSTANCE_TYPE,
    subnetId: SUBNET_ID,
    vpcSecurityGroupIds: [sg.id],
    sourceDestCheck: true,
    metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
    userDataBase64: h.userDataBase64,
    userDataReplaceOnChange: true,
    tags: { Name: h.name, 'twinwall:host': h.name },
  });
}

if (require.main === module) {
  const hosts = JSON.parse(fs.readFileSync(process.argv[3], 'utf8')) as BaselineHost[];
  const app = new App({ outdir: process.argv[2], stackTraces: false });
  const stack = new TerraformStack(app, 'fleet');
  new AwsProvider(stack, 'aws', { region: 'eu-central-1' });
  for (const h of hosts) host(stack, h);
  app.synth();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
}
