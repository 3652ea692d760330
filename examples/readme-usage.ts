import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { FilteredHost, Peer, dnsClient, mailServer, sshAdmin, webServer } from 'twinwall';

const app = new App();
const stack = new TerraformStack(app, 'production');
new AwsProvider(stack, 'aws', { region: 'eu-central-1' });

const admins = [Peer.ipv4('192.0.2.0/24')];
const resolvers = [Peer.ipv4('10.0.0.2/32')];

// One declaration per server: the roles it plays. Both walls are rendered from it.
const mail = new FilteredHost(stack, 'mail', {
  vpcId: 'vpc-0123456789abcdef0',
  roles: [mailServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })],
});

// Your instance, as you have it: give it the host's groups and its user-data.
new Instance(stack, 'mail-instance', {
  ami: 'ami-0123456789abcdef0',
  instanceType: 't3.micro',
  subnetId: 'subnet-0123456789abcdef0',
  vpcSecurityGroupIds: [...mail.securityGroupIds], // the network wall (no other groups)
  userDataBase64: mail.userDataBase64, // the host wall (base64, never user_data)
  userDataReplaceOnChange: true, // a firewall change replaces the instance
});

// Or your launch template (Auto Scaling): its user_data is base64 already.
const web = new FilteredHost(stack, 'web', {
  vpcId: 'vpc-0123456789abcdef0',
  roles: [webServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })],
});
new LaunchTemplate(stack, 'web-template', {
  imageId: 'ami-0123456789abcdef0',
  instanceType: 't3.micro',
  vpcSecurityGroupIds: [...web.securityGroupIds],
  userData: web.userDataBase64,
});

app.synth();
