import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { FilteredHost, Peer, Port, dnsClient, mailServer, sshAdmin, webServer } from 'twinwall';

const app = new App();
const stack = new TerraformStack(app, 'production');
new AwsProvider(stack, 'aws', { region: 'eu-central-1' });

const vpcId = 'vpc-0123456789abcdef0';
const admins = [Peer.ipv4('192.0.2.0/24')];
const resolvers = [Peer.ipv4('10.0.0.2/32')];

// One declaration per server: the roles it plays. Both walls are rendered from it.
const mail = new FilteredHost(stack, 'mail', {
  vpcId,
  roles: [mailServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })],
});

// Three tiers. `addresses` is where a host's (or a group's) members live: the other hosts'
// host walls match it, their network walls reference the host's security group.
const web = new FilteredHost(stack, 'web', {
  vpcId,
  roles: [webServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })],
  addresses: ['10.0.1.0/24'],
});
const api = new FilteredHost(stack, 'api', { vpcId, roles: [sshAdmin({ from: admins }), dnsClient({ resolvers })], addresses: ['10.0.2.0/24'] });
const db = new FilteredHost(stack, 'db', { vpcId, roles: [sshAdmin({ from: admins })], addresses: ['10.0.3.0/24'] });

// Grants write both walls of both hosts (egress on one, ingress on the other), in any order.
web.allowTo(api, 'http-alt', 'proxy requests to the API');
db.allowFrom(api, Port.tcp(5432), 'the API reads and writes its database');

// Your instances and launch templates, as you have them: one call attaches both walls (every
// security group id, and the user-data as user_data_base64, replaced on change).
const instance = (id: string, subnetId: string) => new Instance(stack, id, { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId });
mail.attachTo(instance('mail-instance', 'subnet-0123456789abcdef0'));
api.attachTo(instance('api-instance', 'subnet-0123456789abcdef1'));
db.attachTo(instance('db-instance', 'subnet-0123456789abcdef2'));
// A launch template (Auto Scaling): a group of identical hosts, one policy.
web.attachTo(new LaunchTemplate(stack, 'web-template', { imageId: 'ami-0123456789abcdef0', instanceType: 't3.micro' }));

app.synth();
