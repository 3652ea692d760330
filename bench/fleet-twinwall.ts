/**
 * Child process of the synth benchmark: the fleet written with twinwall (FilteredHost, both
 * walls). Synthesizes into argv[2] and prints its own figures as JSON on stdout.
 */
import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { FilteredHost } from '../constructs';
import { AMI, FLEET_SIZE, INSTANCE_TYPE, SUBNET_ID, VPC_ID, fleetRoles, hostName } from './fleet';

const started = process.hrtime.bigint();
const size = Number(process.argv[3] ?? FLEET_SIZE);
if (process.argv[4] === '--without-lint') {
  // Attribution only (a figure, never the compared ratio): the same program with the lint
  // Aspect's visit made a no-op, to show how much of the synth time the Aspect takes.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('../constructs/lint') as typeof import('../constructs/lint')).TwinwallLint.prototype.visit = () => undefined;
}
const app = new App({ outdir: process.argv[2], stackTraces: false });
const stack = new TerraformStack(app, 'fleet');
new AwsProvider(stack, 'aws', { region: 'eu-central-1' });
for (let i = 0; i < size; i++) {
  new FilteredHost(stack, hostName(i), {
    roles: fleetRoles(i),
    vpcId: VPC_ID,
    instance: { ami: AMI, instanceType: INSTANCE_TYPE, subnetId: SUBNET_ID },
  });
}
app.synth();
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
