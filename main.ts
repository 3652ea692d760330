/**
 * The example app: two stacks, `staging` and `production`, identical but for their context
 * values (cdktf.json "context" → "twinwall"), each holding
 *
 * 1. `sample`   — the server of Hatch's article: Apache and Postfix in, SSH from the admin LAN only,
 *                 DNS to the resolvers (log lookups, DNSBL); out only SMTP and DNS.
 * 2. `resolver` — a recursive DNS server answering the VPC only.
 * 3. `web`      — a web server whose only egress is DNS to the resolvers and tcp/8080 to `app`.
 *    `app`      — the application tier behind it: tcp/8080 from the web host only.
 *    `db`       — the app's database: tcp/5432 from the app only, no Internet egress.
 *    The three tiers are joined by grants (`web.allowTo(app, …)`, `db.allowFrom(app, …)`), which
 *    write both walls of both hosts: each network wall references the other host's security
 *    group, each host wall matches the other host's declared addresses.
 *
 * Every host gets the default host wall, nftables (`/etc/twinwall/twinwall.nft`). For images that
 * have iptables and not nft, build the stacks with `{ hostFirewall: 'iptables' }`
 * (ExampleStackOptions; the tests and the boot tier build the production stack that way too).
 *
 * `npm run synth` works offline with no AWS account: every value has a default below, and the
 * provider is set up so `terraform plan` runs without credentials.
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { FilteredHost } from './constructs';
import { HostFirewall, Peer, Port, Role, TwinwallError, dnsClient, dnsServer, formatHostSummary, mailServer, sshAdmin, webServer } from './lib';
import { locate, show } from './lib/errors';

/** What distinguishes one environment from another. */
export interface EnvironmentConfig {
  readonly region: string;
  readonly vpcId: string;
  /** The VPC's primary IPv4 CIDR: the recursive resolver answers it and nothing else. */
  readonly vpcCidr: string;
  /** The DNS resolvers hosts may query (CIDRs). */
  readonly resolvers: readonly string[];
  /** Networks SSH administration may come from (CIDRs). */
  readonly adminNetworks: readonly string[];
  /** The public subnet (sample, resolver, web) and its CIDR. */
  readonly publicSubnetId: string;
  readonly publicSubnetCidr: string;
  /** The web server's fixed private address (in the public subnet): the app's host wall admits it alone. */
  readonly webPrivateIp: string;
  /** The private subnet of the application tier and its CIDR. */
  readonly appSubnetId: string;
  readonly appSubnetCidr: string;
  /** The private subnet of the database and its CIDR. */
  readonly dataSubnetId: string;
  readonly dataSubnetCidr: string;
  readonly ami: string;
  readonly instanceType: string;
}

export const STACK_NAMES = ['staging', 'production'] as const;
export type StackName = (typeof STACK_NAMES)[number];

/**
 * Defaults, used for any key cdktf.json does not set. Documentation and private ranges only; the
 * AWS ids are placeholders that plan fine offline but must be replaced for a real deployment.
 */
export const DEFAULTS: Record<StackName, EnvironmentConfig> = {
  staging: {
    region: 'eu-central-1',
    vpcId: 'vpc-0000000000000a001',
    vpcCidr: '10.10.0.0/16',
    resolvers: ['10.10.0.2/32'],
    adminNetworks: ['192.0.2.0/24'],
    publicSubnetId: 'subnet-0000000000000a001',
    publicSubnetCidr: '10.10.1.0/24',
    webPrivateIp: '10.10.1.10',
    appSubnetId: 'subnet-0000000000000a002',
    appSubnetCidr: '10.10.2.0/24',
    dataSubnetId: 'subnet-0000000000000a003',
    dataSubnetCidr: '10.10.3.0/24',
    ami: 'ami-0000000000000a001',
    instanceType: 't3.micro',
  },
  production: {
    region: 'eu-central-1',
    vpcId: 'vpc-0000000000000b001',
    vpcCidr: '10.20.0.0/16',
    resolvers: ['10.20.0.2/32'],
    adminNetworks: ['198.51.100.0/26'],
    publicSubnetId: 'subnet-0000000000000b001',
    publicSubnetCidr: '10.20.1.0/24',
    webPrivateIp: '10.20.1.10',
    appSubnetId: 'subnet-0000000000000b002',
    appSubnetCidr: '10.20.2.0/24',
    dataSubnetId: 'subnet-0000000000000b003',
    dataSubnetCidr: '10.20.3.0/24',
    ami: 'ami-0000000000000a001',
    instanceType: 't3.small',
  },
};

const LIST_KEYS = new Set<keyof EnvironmentConfig>(['resolvers', 'adminNetworks']);

/** The environment of `stack`: cdktf.json context "twinwall" → stack, over DEFAULTS. */
export function environmentConfig(scope: Construct, stack: StackName): EnvironmentConfig {
  const all: unknown = scope.node.tryGetContext('twinwall');
  if (all === undefined) return DEFAULTS[stack];
  if (all === null || typeof all !== 'object' || Array.isArray(all)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: all,
      problem: `cdktf.json context twinwall ${show(all)} is not an object.`,
      fix: `write it as { "staging": { … }, "production": { … } }.`,
    });
  }
  const given: unknown = (all as Record<string, unknown>)[stack];
  if (given === undefined) return DEFAULTS[stack];
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: given,
      problem: `cdktf.json context twinwall.${stack} ${show(given)} is not an object.`,
      fix: `write it as { "vpcId": "vpc-…", "vpcCidr": "10.0.0.0/16", … } (keys: ${Object.keys(DEFAULTS[stack]).join(', ')}).`,
    });
  }
  const merged: Record<string, unknown> = { ...DEFAULTS[stack] };
  for (const [key, value] of Object.entries(given as Record<string, unknown>)) {
    if (!(key in DEFAULTS[stack])) {
      throw new TwinwallError('OPTION_INVALID', {
        value: key,
        problem: `cdktf.json context twinwall.${stack} has an unknown key ${show(key)}.`,
        fix: `use only ${Object.keys(DEFAULTS[stack]).join(', ')}.`,
      });
    }
    const list = LIST_KEYS.has(key as keyof EnvironmentConfig);
    const ok = list ? Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string') : typeof value === 'string' && value !== '';
    if (!ok) {
      throw new TwinwallError('OPTION_INVALID', {
        value,
        problem: `cdktf.json context twinwall.${stack}.${key} ${show(value)} is not ${list ? 'a non-empty list of strings' : 'a non-empty string'}.`,
        fix: `e.g. ${show((DEFAULTS[stack] as unknown as Record<string, unknown>)[key])}.`,
      });
    }
    merged[key] = value;
  }
  return merged as unknown as EnvironmentConfig;
}

/**
 * Choices the example leaves at their defaults; the tests and the boot tier set them (the
 * iptables host wall, for images that have iptables and not nft).
 */
export interface ExampleStackOptions {
  /** Every host's host-wall backend (default: FilteredHost's own, 'nftables'). */
  readonly hostFirewall?: HostFirewall;
}

/** One environment: the provider and the five hosts. */
export class TwinwallExampleStack extends TerraformStack {
  public readonly config: EnvironmentConfig;
  public readonly hosts: readonly FilteredHost[];

  public constructor(scope: Construct, id: StackName, config: EnvironmentConfig, options: ExampleStackOptions = {}) {
    super(scope, id);
    this.config = config;
    const backend = options.hostFirewall === undefined ? {} : { hostFirewall: options.hostFirewall };

    // Offline-friendly provider: fake keys and every skip_* flag, so `terraform plan` (and the
    // tests) run with no AWS account or network. Real deployments drop the keys and the skip_*
    // flags and let the provider find credentials (profile, SSO, instance role …).
    new AwsProvider(this, 'aws', {
      region: config.region,
      accessKey: 'twinwall-offline-plan',
      secretKey: 'twinwall-offline-plan',
      skipCredentialsValidation: true,
      skipRequestingAccountId: true,
      skipMetadataApiCheck: 'true',
      skipRegionValidation: true,
    });

    // Roles and peers are built here, outside the hosts, so locate their errors ourselves:
    // "TW102 CIDR_HOST_BITS at staging/context twinwall.staging.adminNetworks: …".
    const fromContext = (key: 'adminNetworks' | 'resolvers') =>
      locate(this.node.path, () => locate(`context twinwall.${id}.${key}`, () => config[key].map((c) => Peer.ipv4(c))));
    const roles = (host: string, build: () => Role[]) => locate(`${this.node.path}/${host}`, build);
    const admins = fromContext('adminNetworks');
    const resolvers = fromContext('resolvers');
    // Each host declares the subnet it is in, so its DHCP client may renew with that subnet's
    // router (base + 1) besides broadcasting.
    const publicSubnet = { subnets: [config.publicSubnetCidr] };
    const appSubnet = { subnets: [config.appSubnetCidr] };
    const instance = (subnetId: string, publicIp: boolean) => ({
      ami: config.ami,
      instanceType: config.instanceType,
      subnetId,
      associatePublicIpAddress: publicIp,
    });

    // 1. The article's sample server. Egress: SMTP anywhere (mailServer) and DNS to the
    //    resolvers (dnsClient); webServer and sshAdmin send nothing. So no outbound HTTP, no FTP,
    //    no udp/1434: the host that catches a worm cannot pass it on.
    const sample = new FilteredHost(this, 'sample', {
      roles: roles('sample', () => [webServer(), mailServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })]),
      vpcId: config.vpcId,
      ...backend,
      ...publicSubnet,
      instance: instance(config.publicSubnetId, true),
    });

    // 2. A recursive resolver for the VPC only (an open resolver is a DDoS amplifier).
    const resolver = new FilteredHost(this, 'resolver', {
      roles: roles('resolver', () => [dnsServer({ mode: 'recursive', clients: [Peer.ipv4(config.vpcCidr)] }), sshAdmin({ from: admins })]),
      vpcId: config.vpcId,
      ...backend,
      ...publicSubnet,
      instance: instance(config.publicSubnetId, true),
    });

    // 3. Three tiers: web → app → db. Each host declares only its own roles; the grants between
    //    them are declared once, after all three exist, and write both walls of both hosts (the
    //    network walls reference each other's security groups, the host walls match the declared
    //    addresses: the web server's fixed IP, the app and data subnets).
    const web = new FilteredHost(this, 'web', {
      roles: roles('web', () => [webServer(), sshAdmin({ from: admins }), dnsClient({ resolvers })]),
      vpcId: config.vpcId,
      ...backend,
      ...publicSubnet,
      instance: { ...instance(config.publicSubnetId, true), privateIp: config.webPrivateIp },
    });

    const app = new FilteredHost(this, 'app', {
      roles: roles('app', () => [sshAdmin({ from: admins }), dnsClient({ resolvers })]),
      vpcId: config.vpcId,
      ...backend,
      ...appSubnet,
      addresses: [config.appSubnetCidr],
      instance: instance(config.appSubnetId, false),
    });

    // The database sends nothing to the Internet: DNS to the VPC resolver is all it may start.
    const db = new FilteredHost(this, 'db', {
      roles: roles('db', () => [sshAdmin({ from: admins }), dnsClient({ resolvers })]),
      vpcId: config.vpcId,
      ...backend,
      subnets: [config.dataSubnetCidr],
      addresses: [config.dataSubnetCidr],
      instance: instance(config.dataSubnetId, false),
    });

    web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
    db.allowFrom(app, Port.tcp(5432), 'the app tier reads and writes its database (PostgreSQL)');

    this.hosts = [sample, resolver, web, app, db];
  }
}

/**
 * Build both stacks into `app` (tests call this with their own App, and with
 * `{ hostFirewall: 'iptables' }` for the example's hosts with the iptables wall).
 */
export function buildApp(app: App, options: ExampleStackOptions = {}): TwinwallExampleStack[] {
  return STACK_NAMES.map((name) => new TwinwallExampleStack(app, name, environmentConfig(app, name), options));
}

/** The per-host tables printed after synth. */
export function summaryText(stacks: readonly TwinwallExampleStack[]): string {
  return stacks
    .map((s) => [`== stack ${s.node.id}`, ...s.hosts.map((h) => formatHostSummary(h.rendering))].join('\n\n'))
    .join('\n\n');
}

/** Where the app leaves the tables, next to the stacks (`npm run synth` prints it last). */
export const SUMMARY_FILE = 'twinwall-summary.txt';

if (require.main === module) {
  const app = new App();
  const stacks = buildApp(app);
  app.synth();
  const text = `${summaryText(stacks)}\n`;
  fs.writeFileSync(path.join(app.outdir, SUMMARY_FILE), text);
  // Under the cdktf CLI (which sets CDKTF_OUTDIR) stdout would be buried among its progress
  // output, so the synth script prints the file after the CLI is done; run directly, print it.
  if (process.env.CDKTF_OUTDIR === undefined) process.stdout.write(text);
}
