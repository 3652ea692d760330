/**
 * FilteredHost: one host policy, both walls. A thin adapter over the pure core in lib/: it
 * composes (or takes) a HostPolicy, asks lib/render for the security-group rule specs and the
 * user-data, and turns them into provider resources. No policy decision is made here.
 */
import { Annotations, Lazy, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Cidr } from '../lib/address';
import { TwinwallError, locate, show } from '../lib/errors';
import { Role } from '../lib/flow';
import { CONNECTIONS_ROLE, Grant, GrantPorts, HostEndpoint, connectionFlows, endpointLabel, endpointPeer } from '../lib/connections';
import { Peer, PeerSource } from '../lib/peer';
import { HostPolicy, LoadFailureMode, MetadataAccess } from '../lib/policy';
import { HostFirewall, HostRendering, SgRuleSpec, UserData, UserDataPart, renderHost } from '../lib/render';
import { hostCidrsTags, hostWallTags } from '../lib/check/record';
import { Suppression, SuppressionInput, checkSuppressions, suppressionTags } from '../lib/lint';
import { HOST_BRAND, TwinwallLint } from './lint';
import { cdktfTokenIn } from '../lib/tokens';

/** Settings for the optional aws_instance FilteredHost creates. */
export interface FilteredHostInstanceProps {
  readonly ami: string;
  readonly instanceType: string;
  readonly subnetId: string;
  readonly keyName?: string;
  /**
   * A fixed private IPv4 address. When given, `asPeer()` without arguments uses it (as a /32)
   * for the host wall of the hosts that reference this one.
   */
  readonly privateIp?: string;
  readonly associatePublicIpAddress?: boolean;
  readonly iamInstanceProfile?: string;
  /** Extra tags for the instance (Name defaults to the host name). No `twinwall:` keys (TW225). */
  readonly tags?: Readonly<Record<string, string>>;
}

/** What every FilteredHost takes, whether it composes its policy or is given one. */
export interface FilteredHostCommonProps {
  /** The VPC of the security group (may be a Terraform reference). */
  readonly vpcId: string;
  /**
   * The CIDRs this host's addresses lie in (its subnet, or its fixed address as a /32). Other
   * hosts' host walls use them when they reference this host with `asPeer()`.
   */
  readonly addresses?: readonly string[];
  /** When given, FilteredHost also creates the aws_instance, wired to the group and user-data. */
  readonly instance?: FilteredHostInstanceProps;
  /**
   * Lint findings this host accepts, each with the reason why (e.g. { id: "TWL002", reason:
   * "bastion: admins connect from changing networks; sshd takes keys and MFA only" }). A
   * suppression without a reason is an error (TW251). The reasons are recorded as tags on the
   * host's security group and shown by `twinwall report`. Ids: docs/lint.md.
   */
  readonly suppressions?: readonly SuppressionInput[];
  /**
   * Extra tags for the security group and the instance. Keys starting with `twinwall:` are
   * twinwall's own (the host's identity, roles, host-side CIDRs, suppressions) and are refused
   * (TW225 TAG_RESERVED).
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * How many security groups the network wall may be split across when one group's quota (60
   * rules per direction per address family) is not enough: 1 to 5, default 5 (all a network
   * interface takes). Lower it when the instance carries groups of its own.
   */
  readonly maxSecurityGroups?: number;
  /**
   * Host wall: a set of more than this many addresses (of one family, matched with the same
   * protocol and ports) becomes an ipset `hash:net` set matched by one rule, instead of one rule
   * per address. Default 16; `Infinity` keeps every rule linear.
   */
  readonly ipsetThreshold?: number;
  /**
   * The host wall's backend: 'nftables' (default: one `nft -f` file, table inet twinwall, both
   * families and their sets in one transaction, beside any other table,
   * /etc/twinwall/twinwall.nft) or 'iptables' (iptables-restore tables per family, ipsets for
   * long address lists, /etc/iptables/rules.v4 and rules.v6). Same semantics; the image must
   * provide the backend's tool (nft, or iptables-restore): choose 'iptables' for an image that
   * has iptables and not nft. docs/host-firewall.md says which to choose.
   */
  readonly hostFirewall?: HostFirewall;
  /**
   * Your own cloud-init configuration (packages, files, your app), as parts after the host
   * wall's in the instance's user-data (a MIME multi-part document):
   * `[UserDataPart.cloudConfig({ packages: ['nginx'] }), UserDataPart.shellScript('#!/bin/sh\n…')]`.
   * The host wall's part comes first and no part can switch it off: cloud-config parts are
   * merged by appending (their bootcmd, write_files and runcmd come after the wall's), and a part
   * that sets cloud-init's module lists or merge rules, or writes the wall's files, is refused
   * (TW231). A script runs as root after the wall is loaded: docs/user-data.md says what that
   * means. The 16 KiB limit counts every part.
   */
  readonly userDataParts?: readonly UserDataPart[];
}

/** A host that composes its policy from the roles it plays. */
export interface FilteredHostRolesProps extends FilteredHostCommonProps {
  /** The roles this host plays. */
  readonly roles: readonly Role[];
  /** The host name used in the policy, descriptions, tags and log prefixes; default the construct id. */
  readonly name?: string;
  /** Who may reach the instance metadata service from the host (default "root-only"). */
  readonly instanceMetadata?: MetadataAccess;
  /** Log what the host wall would drop and accept it instead. */
  readonly audit?: boolean;
  /**
   * The IPv4 subnets the host's interfaces are in (literal CIDRs, e.g. ["10.0.1.0/24"]): the host
   * wall lets DHCP renewals reach each subnet's router (base + 1) besides the broadcast address.
   */
  readonly subnets?: readonly string[];
  /**
   * What a host wall that fails to load at boot leaves: "lockdown" (default: a fallback of core
   * matches, closed but reachable through the admin roles) or "open" (that family unfiltered on
   * the host, behind the security group). docs/user-data.md, "When loading fails".
   */
  readonly onLoadFailure?: LoadFailureMode;
  readonly policy?: never;
}

/** A host given a policy composed elsewhere (HostPolicy.compose), which carries its own name and options. */
export interface FilteredHostPolicyProps extends FilteredHostCommonProps {
  readonly policy: HostPolicy;
  readonly roles?: never;
  readonly name?: never;
  readonly instanceMetadata?: never;
  readonly audit?: never;
  readonly subnets?: never;
  readonly onLoadFailure?: never;
}

/** Either `roles` (with the policy options) or a prebuilt `policy`, never both. */
export type FilteredHostProps = FilteredHostRolesProps | FilteredHostPolicyProps;

/** Options of `FilteredHost.asPeer`. */
export interface AsPeerOptions {
  /**
   * The CIDRs the referencing host's wall matches for this host; default the `addresses` given
   * to this host, else its fixed private IP.
   */
  readonly hostCidrs?: readonly string[];
  /** The peer's name in rule ids, descriptions and reports; default "<host name> hosts". */
  readonly label?: string;
}

function invalid(what: string, value: unknown, fix: string): TwinwallError {
  return new TwinwallError('OPTION_INVALID', { value, problem: `${what} ${show(value)} is not valid.`, fix });
}

/** Tag keys only twinwall writes: the checker, report and diff read them back from the artefacts. */
export const RESERVED_TAG_PREFIX = 'twinwall:';

/** User tags, checked: a map of strings that sets no `twinwall:` key (TW225 TAG_RESERVED). */
function userTags(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(what, value, 'pass a map of tag keys to strings, e.g. { team: "mail" }.');
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key.toLowerCase().startsWith(RESERVED_TAG_PREFIX)) {
      throw new TwinwallError('TAG_RESERVED', {
        value: key,
        path: [what],
        problem: `the tag key ${show(key)} is reserved: only twinwall writes "${RESERVED_TAG_PREFIX}…" tags (the host's identity, roles, host-side CIDRs and lint suppressions), and twinwall check, report and diff trust them.`,
        fix: `rename the tag (e.g. ${show(key.slice(RESERVED_TAG_PREFIX.length).replace(/^[:]+/, '') || 'team')}); to rename the host set \`name\`, and to accept a lint finding use \`suppressions\` with a reason.`,
      });
    }
    if (typeof v !== 'string') throw invalid(`${what}.${key}`, v, 'give every tag a string value.');
  }
  return { ...(value as Record<string, string>) };
}

function requireText(value: unknown, what: string, example: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(what, value, `pass a non-empty string, e.g. ${example}.`);
  }
}

/** A security-group id or label that is a Terraform reference must not leak into the host wall. */
function checkNoToken(rendering: HostRendering): void {
  const leaked = cdktfTokenIn(rendering.userData.document);
  if (leaked !== undefined) {
    throw new TwinwallError('UNRESOLVED_TOKEN', {
      value: leaked.token,
      problem: 'the rendered user-data contains a Terraform token, which only has a value at deploy time, but user-data is computed at synth.',
      fix: 'give security-group peers a literal label (Peer.securityGroup(sg.id, { hostCidrs, label: "app tier" })) and pass literal CIDRs, names and userDataParts text.',
    });
  }
}

/**
 * A host's rendering, checked for tokens (checkNoToken), to keep: the same values, except that
 * its texts are not kept: the user-data's plain text (`cloudConfig` and `document`, 28 KB on each
 * bench host, where the gzipped base64 is 5 KB) and the host wall's (`nftables` and
 * `nftablesFallback`, or `iptables` and `fallback`: 9 KB more). Nothing at synth reads them again
 * (the instance takes `base64`, lint the rule specs and the policy), and a thousand hosts' texts
 * kept alive made every young collection copy them and the peak memory 50 MB higher. The first
 * read of any of them renders the host again with `render` (the same pure renderer, the same
 * policy and options, so the same texts) and keeps that rendering. A getter stays a getter
 * (`iptables` of an nftables rendering renders on its first read).
 */
function withoutTexts(rendering: HostRendering, render: () => HostRendering): HostRendering {
  const { base64, gzipped, bytes, plainBytes } = rendering.userData;
  let again: HostRendering | undefined;
  const rendered = (): HostRendering => (again ??= render());
  const userData: UserData = Object.freeze({
    get cloudConfig(): string {
      return rendered().userData.cloudConfig;
    },
    get document(): string {
      return rendered().userData.document;
    },
    base64,
    gzipped,
    bytes,
    plainBytes,
  });
  const fields = Object.getOwnPropertyDescriptors(rendering);
  const lean: PropertyDescriptorMap = { ...fields, userData: { ...fields.userData, value: userData } };
  for (const key of ['iptables', 'fallback', 'nftables', 'nftablesFallback'] as const) {
    const field = fields[key];
    if (field === undefined || field.get !== undefined) continue;
    lean[key] = { enumerable: field.enumerable, configurable: false, get: () => rendered()[key] };
  }
  return Object.freeze(Object.defineProperties({}, lean) as HostRendering);
}

/** A reference's host-side CIDRs, recorded for `twinwall check` (lib/check/record.ts). */
function referenceRecord(spec: SgRuleSpec): { tags?: Record<string, string> } {
  return spec.hostCidrs === undefined ? {} : { tags: hostCidrsTags(spec.hostCidrs) };
}

/** The host names of each stack, with the construct path that took each. */
const HOST_NAMES = new WeakMap<TerraformStack, Map<string, string>>();
/** The stacks whose prepareStack composes their hosts first (FilteredHost.composeWhenPrepared). */
const PREPARED_STACKS = new WeakSet<TerraformStack>();

/**
 * Two hosts of one stack with one name would be one host to check, report, explain and diff
 * (they name hosts by it), so the second is refused (TW230 HOST_NAME_DUPLICATE).
 */
function claimHostName(host: Construct, name: string): void {
  const stack = TerraformStack.of(host);
  const names = HOST_NAMES.get(stack) ?? new Map<string, string>();
  HOST_NAMES.set(stack, names);
  const prior = names.get(name);
  if (prior !== undefined) {
    throw new TwinwallError('HOST_NAME_DUPLICATE', {
      value: name,
      problem: `the host name ${show(name)} is already taken in this stack by ${prior}; check, report, explain and diff name hosts by it, so they could not tell the two apart.`,
      fix: 'give one of them its own name (the `name` prop, or another construct id).',
    });
  }
  names.set(name, host.node.path);
}

/** Which host a Peer made by `FilteredHost.toPeer()` stands for (a host passed as a role's peer). */
const HOST_OF_PEER = new WeakMap<Peer, FilteredHost>();

/** What a host is once composed: its final policy and the resources rendered from it. */
interface Composed {
  readonly policy: HostPolicy;
  readonly rendering: HostRendering;
  readonly securityGroups: readonly SecurityGroup[];
  readonly securityGroupIds: readonly string[];
  readonly ingressRules: readonly VpcSecurityGroupIngressRule[];
  readonly egressRules: readonly VpcSecurityGroupEgressRule[];
}

/**
 * One host policy, both walls. Hosts may grant each other (`allowTo`, `allowFrom`,
 * `allowInternally`, or a host passed where a Peer is): grants are collected and composed into
 * each host's policy when the host is first read or synthesized, so construction order does not
 * matter and two hosts may grant each other.
 *
 * When things are final: `policy`, `rendering`, `cloudConfig`, `securityGroups`, `ingressRules`
 * and `egressRules` compose the host on their first read (at the latest at synth: when cdktf
 * prepares the stack, before it resolves any token); from then on they never change, and a grant that would
 * change them is an error (TW227 HOST_FINAL). `userDataBase64` and `securityGroupIds` are lazy
 * values resolved at synth: read and pass them at any time.
 */
export class FilteredHost extends Construct implements PeerSource {
  /** The network wall's first group (the one other hosts reference); no inline rules. Exists from construction on. */
  public readonly securityGroup: SecurityGroup;
  /**
   * The ids of every group of the network wall (one, unless the quota forced a split), for your
   * instance's or launch template's `vpc_security_group_ids`: a lazy list, resolved at synth,
   * so it holds every group grants made necessary.
   */
  public readonly securityGroupIds: readonly string[];
  /**
   * The user-data, base64 (gzip first when the renderer needed it): pass it as
   * `user_data_base64` of your own aws_instance (or `user_data` of a launch template, which is
   * base64 already), never as an instance's `user_data`. A lazy value resolved at synth, after
   * every grant; the literal text is `rendering.userData.base64`.
   */
  public readonly userDataBase64: string;
  /** The instance, when `instance` was given. */
  public readonly instance?: Instance;
  /** The CIDRs other hosts' host walls match for this host: `addresses`, else the fixed private IP. */
  public readonly addresses?: readonly string[];
  /** The lint findings this host suppresses, with their reasons (validated). */
  public readonly lintSuppressions: readonly Suppression[];

  /** The host's roles composed without grants (validated at construction). */
  private readonly basePolicy: HostPolicy;
  private readonly baseRendering: HostRendering;
  private readonly renderOptions: { maxSecurityGroups?: number; ipsetThreshold?: number; hostFirewall?: HostFirewall; userDataParts?: readonly UserDataPart[] };
  private readonly vpcId: string;
  private readonly userTagValues: Record<string, string>;
  /** This host as the other end of a grant. */
  private readonly endpoint: HostEndpoint;
  /** Grants this host makes or receives, in the order they were declared. */
  private readonly grants: Grant[] = [];
  private composed?: Composed;
  private composeError?: unknown;
  /** What made the policy final (for HOST_FINAL). */
  private finalBy?: string;

  public constructor(scope: Construct, id: string, props: FilteredHostProps) {
    super(scope, id);
    // The policy's name, which HostPolicy.compose puts first in its errors' paths.
    const policyName = props?.policy instanceof HostPolicy ? props.policy.name : String(props?.name ?? id);
    try {
      this.basePolicy = FilteredHost.policyFrom(id, props);
      this.lintSuppressions = checkSuppressions(props.suppressions);
      requireText(props.vpcId, 'vpcId', 'vpc.id or "vpc-0123456789abcdef0"');
      this.vpcId = props.vpcId;
      this.renderOptions = {
        ...(props.maxSecurityGroups !== undefined ? { maxSecurityGroups: props.maxSecurityGroups } : {}),
        ...(props.ipsetThreshold !== undefined ? { ipsetThreshold: props.ipsetThreshold } : {}),
        ...(props.hostFirewall !== undefined ? { hostFirewall: props.hostFirewall } : {}),
        // A copy: the host composes at synth, and the parts are what they were at construction.
        ...(props.userDataParts !== undefined ? { userDataParts: Array.isArray(props.userDataParts) ? [...props.userDataParts] : props.userDataParts } : {}),
      };
      // Rendered now, so what is wrong with the host's own roles fails here, at its construction;
      // it is the final rendering unless grants reach the host.
      const rendering = renderHost(this.basePolicy, this.renderOptions);
      checkNoToken(rendering);
      const basePolicy = this.basePolicy;
      const renderOptions = this.renderOptions;
      this.baseRendering = withoutTexts(rendering, () => renderHost(basePolicy, renderOptions));
      // Checked now (masks, host bits, tokens), so a bad value fails here rather than at a grant.
      const fixedIp = props.instance?.privateIp;
      this.addresses = props.addresses !== undefined ? [...props.addresses] : fixedIp !== undefined ? [`${fixedIp}/32`] : undefined;
      for (const cidr of this.addresses ?? []) Cidr.of(cidr);

      const hostName = this.basePolicy.name;
      claimHostName(this, hostName);
      this.userTagValues = userTags(props.tags, 'tags');
      const instanceTags = userTags(props.instance?.tags, 'instance.tags');
      // Deliberately no `ingress` / `egress` arguments: when Terraform's aws_security_group
      // creates a VPC group it revokes the allow-all egress rule AWS adds by default, and
      // leaving the inline blocks unset lets the separate rule resources below own every rule
      // without fighting them. twinwall relies on that: every egress rule is written
      // explicitly, so an egress rule missing from the policy really is denied.
      // The first group exists from construction on (other hosts reference it); its tags are
      // completed when the host is composed.
      this.securityGroup = this.createGroup(0, this.basePolicy);
      this.endpoint = { name: hostName, path: this.node.path, groupId: this.securityGroup.id, ...(this.addresses !== undefined ? { addresses: this.addresses } : {}) };
      this.securityGroupIds = Lazy.listValue({ produce: () => [...this.compose('synth').securityGroupIds] });
      this.userDataBase64 = Lazy.stringValue({ produce: () => this.compose('synth').rendering.userData.base64 });

      // A host passed as the peer of one of this host's flows (sshAdmin({ from: [bastion] })):
      // the flow is this host's through its role; the other host gets the mirror flow.
      this.mirrorHostPeers();

      if (props.instance !== undefined) this.instance = this.createInstance(props.instance, hostName, { ...this.userTagValues, ...instanceTags });
      // Lint at synth (constructs/lint.ts): added once per stack, errors fail synth. It reads
      // every host of the stack, which composes them all before it judges any. The brand comes
      // last, so only a fully built host is linted.
      TwinwallLint.ensure(this);
      FilteredHost.composeWhenPrepared(TerraformStack.of(this));
      Object.defineProperty(this, HOST_BRAND, { value: true });
    } catch (e) {
      if (e instanceof TwinwallError) throw this.located(e, policyName);
      throw e;
    }
  }

  /** The composed, normalised policy both walls are rendered from (final once read; see the class doc). */
  public get policy(): HostPolicy {
    return this.compose('a read of policy').policy;
  }

  /** Every rendering of the policy (security-group specs, iptables text, user-data); final once read. */
  public get rendering(): HostRendering {
    return this.compose('a read of rendering').rendering;
  }

  /**
   * The host wall's `#cloud-config` document, as text; final once read. With `userDataParts`
   * it is the first part of `rendering.userData.document`, the whole user-data.
   */
  public get cloudConfig(): string {
    return this.compose('a read of cloudConfig').rendering.userData.cloudConfig;
  }

  /**
   * Every group of the network wall, all attached to the instance: one, unless the quota forced
   * a split (`rendering.securityGroups.groups` says which rule went where). Final once read.
   */
  public get securityGroups(): readonly SecurityGroup[] {
    return this.compose('a read of securityGroups').securityGroups;
  }

  /** The rule resources, in the order of the rendered specs; final once read. */
  public get ingressRules(): readonly VpcSecurityGroupIngressRule[] {
    return this.compose('a read of ingressRules').ingressRules;
  }

  public get egressRules(): readonly VpcSecurityGroupEgressRule[] {
    return this.compose('a read of egressRules').egressRules;
  }

  /**
   * Let this host open connections to `other` on `what` (a catalog service such as "http-alt",
   * a Port, or a list of Ports): an egress flow on this host and an ingress flow on `other`,
   * each on both walls — the network wall references the other host's security group, the host
   * wall matches its declared `addresses` (a host without them is an error at synth, TW226).
   *
   *   web.allowTo(app, 'http-alt', 'proxy requests to the app tier');
   */
  public allowTo(other: FilteredHost, what: GrantPorts, reason: string): this {
    locate(this.node.path, () => this.grant(Grant.of(this.endpoint, this.peerHost(other).endpoint, what, reason), other));
    return this;
  }

  /** Let `other` open connections to this host on `what`: the mirror image of `other.allowTo(this, …)`. */
  public allowFrom(other: FilteredHost, what: GrantPorts, reason: string): this {
    locate(this.node.path, () => this.grant(Grant.of(this.peerHost(other).endpoint, this.endpoint, what, reason), other));
    return this;
  }

  /**
   * Let the members of this host (a group of identical hosts: N instances, a launch template,
   * an Auto Scaling group) open connections to each other on `what`: the network wall
   * references its own group, the host wall matches its declared `addresses`.
   *
   *   cluster.allowInternally(Port.tcpRange(7000, 7001), 'gossip between cluster members');
   */
  public allowInternally(what: GrantPorts, reason: string): this {
    locate(this.node.path, () => this.grant(Grant.of(this.endpoint, this.endpoint, what, reason), this));
    return this;
  }

  /**
   * Attach both walls to an instance or launch template of your own, in one call: every security
   * group of the network wall (`vpc_security_group_ids`) and the host wall's user-data
   * (`user_data_base64` of an instance, with `user_data_replace_on_change`; `user_data` of a
   * launch template, which is base64 already). Both are lazy, so grants declared later still
   * reach the instance. The CLI, report and lint then name it by this host's name.
   *
   *   web.attachTo(new Instance(stack, 'web-instance', { ami, instanceType, subnetId }));
   *   workers.attachTo(new LaunchTemplate(stack, 'workers', { imageId, instanceType }));
   *
   * Refused (TW229 HOST_WALL_NOT_ATTACHED) when the target already has user-data or security
   * groups of its own: twinwall's groups are the whole network wall (another group would widen
   * it), and its user-data carries the host wall.
   */
  public attachTo(target: Instance | LaunchTemplate): this {
    locate(this.node.path, () => {
      const isInstance = target instanceof Instance;
      if (!isInstance && !(target instanceof LaunchTemplate)) {
        throw invalid('attachTo target', (target as { node?: { path?: string } } | undefined)?.node?.path ?? target, 'pass an aws_instance (Instance) or an aws_launch_template (LaunchTemplate) of the same stack.');
      }
      if (TerraformStack.of(target) !== TerraformStack.of(this)) {
        throw invalid('attachTo target', target.node.path, 'attach a host to an instance or launch template of its own stack.');
      }
      const where = `${isInstance ? 'aws_instance' : 'aws_launch_template'} ${target.node.path}`;
      const refuse = (problem: string, fix: string) => new TwinwallError('HOST_WALL_NOT_ATTACHED', { value: target.node.path, problem: `the ${where} ${problem}`, fix });
      const ownUserData = isInstance ? (target.userDataInput ?? target.userDataBase64Input) : target.userDataInput;
      if (ownUserData !== undefined && ownUserData !== this.userDataBase64) {
        throw refuse(
          'already has user-data of its own, which would replace the host wall.',
          'leave user_data / user_data_base64 unset and let attachTo set it; pass your own cloud-init config as the host\'s userDataParts ([UserDataPart.cloudConfig(…), UserDataPart.shellScript(…)]), which ride after the host wall\'s part.',
        );
      }
      const ownGroups = target.vpcSecurityGroupIdsInput;
      if (ownGroups !== undefined && ownGroups.length > 0) {
        throw refuse(
          'already lists security groups of its own; any group beside the host\'s widens its network wall beyond the policy.',
          'leave vpc_security_group_ids unset and let attachTo set it; write what the other groups admit as roles or grants of the host.',
        );
      }
      if (isInstance ? target.networkInterfaceInput !== undefined : target.networkInterfacesInput !== undefined) {
        throw refuse(
          'declares network interfaces, whose security groups attachTo cannot set.',
          'drop the network_interface blocks, or attach the host\'s securityGroupIds to those interfaces yourself and pass its userDataBase64.',
        );
      }
      target.vpcSecurityGroupIds = [...this.securityGroupIds];
      if (target instanceof Instance) {
        target.userDataBase64 = this.userDataBase64;
        // The host wall lives in the user-data: a firewall change must replace the instance.
        target.userDataReplaceOnChange = true;
      } else {
        target.userData = this.userDataBase64;
      }
    });
    return this;
  }

  /**
   * This host as a peer, for a role's flow (`sshAdmin({ from: [bastion] })` calls it): the
   * network wall references its security group, the host wall matches its `addresses`. The
   * other side follows: the host whose role names this one gets the flow, and this host the
   * mirror flow (egress for the other's ingress), as if granted with `allowTo`/`allowFrom`.
   */
  public toPeer(): Peer {
    const peer = locate(this.node.path, () => endpointPeer(this.endpoint));
    HOST_OF_PEER.set(peer, this);
    return peer;
  }

  private peerHost(other: unknown): FilteredHost {
    if (!(other instanceof FilteredHost)) {
      throw new TwinwallError('GRANT_INVALID', {
        value: other,
        problem: `${show(other)} is not a FilteredHost; a grant connects two hosts.`,
        fix: 'pass another FilteredHost, or write the flow in a role with a Peer (Peer.securityGroup(id, { hostCidrs }) for a group twinwall does not manage).',
      });
    }
    if (TerraformStack.of(other) !== TerraformStack.of(this)) {
      throw new TwinwallError('GRANT_INVALID', {
        value: other.node.path,
        problem: `the host ${other.node.path} is in another stack than ${this.node.path}; a grant writes rules into both hosts' groups.`,
        fix: 'put both hosts in one stack, or reference the other host\'s group by id with Peer.securityGroup(id, { hostCidrs, label }).',
      });
    }
    return other;
  }

  /** Record `g` on this host and on `other` (once, for a grant to itself); both must still be open. */
  private grant(g: Grant, other: FilteredHost): void {
    for (const h of new Set<FilteredHost>([this, other])) h.requireOpen(g);
    this.grants.push(g);
    if (other !== this) other.grants.push(g);
  }

  private requireOpen(g: Grant): void {
    if (this.composed === undefined && this.composeError === undefined) return;
    throw new TwinwallError('HOST_FINAL', {
      value: g.toString(),
      problem: `the policy of host ${show(this.basePolicy.name)} (${this.node.path}) is already final (${this.finalBy ?? 'synth'} composed it), so the grant ${g.toString()} would never reach its walls.`,
      fix: 'declare every grant before reading policy, rendering, cloudConfig, securityGroups, ingressRules or egressRules of either host, or read them after synth (userDataBase64 and securityGroupIds are lazy and may be passed at any time).',
    });
  }

  /** Flows of this host's roles whose peer is another FilteredHost: that host gets the mirror flow. */
  private mirrorHostPeers(): void {
    for (const { flow, role } of this.basePolicy.flows) {
      const other = HOST_OF_PEER.get(flow.peer);
      if (other === undefined) continue;
      const source = this.peerHost(other);
      const reason = `${flow.reason} (${role} of ${this.basePolicy.name})`;
      const g =
        flow.direction === 'ingress'
          ? Grant.of(source.endpoint, this.endpoint, flow.port, reason, 'from')
          : Grant.of(this.endpoint, source.endpoint, flow.port, reason, 'to');
      source.requireOpen(g);
      source.grants.push(g);
    }
  }

  /**
   * Compose every host of `stack` when cdktf prepares it for synth, before it resolves any token:
   * the same moment as the first lazy value would, but from a shallow call stack. cdktf captures a
   * full stack trace for every token and nested attribute a resource creates, so resources built
   * deep inside token resolution cost several times more time and memory (bench: synth). If a
   * cdktf version does not call prepareStack, the lazy values still compose each host.
   */
  private static composeWhenPrepared(stack: TerraformStack): void {
    if (PREPARED_STACKS.has(stack)) return;
    PREPARED_STACKS.add(stack);
    const prepare = stack.prepareStack;
    Object.defineProperty(stack, 'prepareStack', {
      configurable: true,
      writable: true,
      value: function prepareStack(this: TerraformStack): void {
        for (const c of this.node.findAll()) if (c instanceof FilteredHost && TerraformStack.of(c) === this) c.compose('synth');
        prepare.call(this);
      },
    });
  }

  /**
   * Compose the host: its roles and every grant it makes or receives, normalised into the final
   * policy, rendered, and turned into the network wall's resources. Runs once; `trigger` says
   * what asked first (for HOST_FINAL).
   */
  private compose(trigger: string): Composed {
    if (this.composed !== undefined) return this.composed;
    if (this.composeError !== undefined) throw this.composeError;
    this.finalBy = trigger;
    try {
      this.composed = this.build();
      return this.composed;
    } catch (e) {
      this.composeError = e instanceof TwinwallError ? this.located(e, this.basePolicy.name) : e;
      throw this.composeError;
    }
  }

  private build(): Composed {
    const flows = connectionFlows(this.endpoint, this.grants);
    const policy =
      flows.length === 0
        ? this.basePolicy
        : HostPolicy.compose(
            this.basePolicy.name,
            [...this.basePolicy.roles, Role.of(CONNECTIONS_ROLE, 'Grants between this host and other hosts (allowTo, allowFrom, allowInternally).', flows)],
            this.basePolicy.options,
          );
    // The base rendering was checked at construction.
    let rendering = this.baseRendering;
    if (flows.length > 0) {
      const renderOptions = this.renderOptions;
      rendering = renderHost(policy, renderOptions);
      checkNoToken(rendering);
      rendering = withoutTexts(rendering, () => renderHost(policy, renderOptions));
    }
    this.securityGroup.tags = this.groupTags(0, policy);
    // More than one group only when the quota forces a split: the first keeps its id, name and
    // description, so a host that grows past 60 rules gains groups without replacing it.
    const securityGroups = rendering.securityGroups.groups.map((plan) => (plan.index === 0 ? this.securityGroup : this.createGroup(plan.index, policy)));

    // Rule construct ids come from rule content alone and are children of the host, not of a
    // group: a rule that moves to another group keeps its address in the plan.
    // Each group's id is read once: every read of `.id` makes a new cdktf token, and cdktf
    // records a full stack trace for each, which is most of the construct's synth time.
    const securityGroupIds = securityGroups.map((g, i) => (i === 0 ? this.endpoint.groupId : g.id));
    const groupOf = new Map<string, string>();
    for (const plan of rendering.securityGroups.groups) for (const spec of plan.rules) groupOf.set(spec.id, securityGroupIds[plan.index]);
    const ingress: VpcSecurityGroupIngressRule[] = [];
    const egress: VpcSecurityGroupEgressRule[] = [];
    for (const spec of rendering.securityGroups.rules) {
      const config = this.ruleConfig(spec, groupOf.get(spec.id) as string);
      if (spec.direction === 'ingress') ingress.push(new VpcSecurityGroupIngressRule(this, spec.id, config));
      else egress.push(new VpcSecurityGroupEgressRule(this, spec.id, config));
    }

    // Surface the host-only decisions a reviewer would not guess from the security group: a
    // flow with no security-group rule at all, a referenced group whose host-side CIDRs hold a
    // link-local service, and a non-default instance-metadata choice. (The rest, such as the
    // link-local addresses inside a 0.0.0.0/0 rule, stay in rendering.securityGroups.hostOnly.)
    for (const decision of rendering.securityGroups.hostOnly) {
      const notable = decision.origin === 'exact' || decision.origin === 'reference' || (decision.origin === 'option' && decision.option?.value !== 'root-only');
      if (notable) Annotations.of(this).addInfo(`twinwall host-only decision: ${decision.summary}`);
    }
    return { policy, rendering, securityGroups, securityGroupIds, ingressRules: ingress, egressRules: egress };
  }

  private groupTags(index: number, policy: HostPolicy): Record<string, string> {
    const hostName = policy.name;
    // twinwall's own keys last: user tags cannot hold them (TW225), and could not override them.
    return {
      Name: index === 0 ? hostName : `${hostName}-${index + 1}`,
      ...this.userTagValues,
      'twinwall:host': hostName,
      'twinwall:roles': policy.roles.map((r) => r.name).join(' '),
      ...(index === 0 ? suppressionTags(this.lintSuppressions) : {}),
      // What the host-only part of the host wall depends on, and the wall's backend, for
      // `twinwall check` (lib/check/record.ts); after the user's tags, which may not replace it.
      ...(index === 0 ? hostWallTags(policy.options, this.baseRendering.hostFirewall) : {}),
    };
  }

  private createGroup(index: number, policy: HostPolicy): SecurityGroup {
    const hostName = policy.name;
    // The description stays constant (changing it replaces the group); roles go in the tags.
    return new SecurityGroup(this, index === 0 ? 'SecurityGroup' : `SecurityGroup${index + 1}`, {
      namePrefix: index === 0 ? `twinwall-${hostName}-` : `twinwall-${hostName}-${index + 1}-`,
      description: index === 0 ? `twinwall network wall of host ${hostName}` : `twinwall network wall of host ${hostName}, part ${index + 1}`,
      vpcId: this.vpcId,
      tags: this.groupTags(index, policy),
      // A replaced group (new VPC, say) is created first, so instances can move to it.
      lifecycle: { createBeforeDestroy: true },
    });
  }

  /**
   * `e` located at this construct's path. The construct path names the host, so a leading host
   * name (HostPolicy.compose locates its errors under it) is dropped rather than repeated:
   * "at oops/h/sshAdmin", never "at oops/h/h/sshAdmin".
   */
  private located(e: TwinwallError, policyName: string): TwinwallError {
    const inner = e.path[0] === policyName ? e.path.slice(1) : e.path;
    return e.at([this.node.path, ...inner]);
  }

  /**
   * This host as the peer of another host's flow. The network wall references this host's
   * security group; the host wall, which cannot see groups, matches `hostCidrs` — by default the
   * `addresses` given to this host, else its fixed private IP.
   */
  public asPeer(options: AsPeerOptions = {}): Peer {
    return locate(this.node.path, () =>
      Peer.securityGroup(this.endpoint.groupId, { hostCidrs: options.hostCidrs ?? this.addresses ?? [], label: options.label ?? endpointLabel(this.endpoint) }),
    );
  }

  private ruleConfig(spec: SgRuleSpec, securityGroupId: string) {
    const targets = [spec.cidrIpv4, spec.cidrIpv6, spec.referencedSecurityGroupId, spec.prefixListId].filter((t) => t !== undefined);
    if (targets.length !== 1) {
      // The renderer guarantees exactly one; the provider would reject anything else at apply.
      throw new Error(`twinwall bug: security-group rule spec ${spec.id} has ${targets.length} targets`);
    }
    return {
      securityGroupId,
      description: spec.description,
      ipProtocol: spec.ipProtocol,
      ...(spec.fromPort !== undefined ? { fromPort: spec.fromPort } : {}),
      ...(spec.toPort !== undefined ? { toPort: spec.toPort } : {}),
      ...(spec.cidrIpv4 !== undefined ? { cidrIpv4: spec.cidrIpv4 } : {}),
      ...(spec.cidrIpv6 !== undefined ? { cidrIpv6: spec.cidrIpv6 } : {}),
      ...(spec.referencedSecurityGroupId !== undefined ? { referencedSecurityGroupId: spec.referencedSecurityGroupId } : {}),
      ...(spec.prefixListId !== undefined ? { prefixListId: spec.prefixListId } : {}),
      // A reference's host-side CIDRs, recorded for `twinwall check` (lib/check/record.ts): the
      // host wall matches them, and the checker must find them in the artefacts alone.
      ...referenceRecord(spec),
    };
  }

  private createInstance(props: FilteredHostInstanceProps, hostName: string, tags: Record<string, string>): Instance {
    requireText(props.ami, 'instance.ami', '"ami-0123456789abcdef0"');
    requireText(props.instanceType, 'instance.instanceType', '"t3.micro"');
    requireText(props.subnetId, 'instance.subnetId', 'subnet.id or "subnet-0123456789abcdef0"');
    return new Instance(this, 'Instance', {
      ami: props.ami,
      instanceType: props.instanceType,
      subnetId: props.subnetId,
      ...(props.keyName !== undefined ? { keyName: props.keyName } : {}),
      ...(props.privateIp !== undefined ? { privateIp: props.privateIp } : {}),
      ...(props.associatePublicIpAddress !== undefined ? { associatePublicIpAddress: props.associatePublicIpAddress } : {}),
      ...(props.iamInstanceProfile !== undefined ? { iamInstanceProfile: props.iamInstanceProfile } : {}),
      // Only this host's groups: any other group would widen the network wall beyond the policy.
      vpcSecurityGroupIds: [...this.securityGroupIds],
      // The host never forwards: packets it did not originate are not its to send.
      sourceDestCheck: true,
      // IMDSv2 only (session tokens), which blunts SSRF reads of the instance credentials.
      metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
      // Computed at synth and passed base64, so Terraform never interpolates ${…} / %{…} in it.
      userDataBase64: this.userDataBase64,
      // The host wall lives in the user-data: a firewall change must replace the host, not be
      // silently ignored by an instance that already ran cloud-init.
      userDataReplaceOnChange: true,
      tags: { Name: hostName, ...tags, 'twinwall:host': hostName },
    });
  }

  private static policyFrom(id: string, props: FilteredHostProps): HostPolicy {
    if (props === undefined || props === null || typeof props !== 'object') {
      throw invalid('FilteredHost props', props, 'pass { roles: [...], vpcId: ... }.');
    }
    if (props.policy !== undefined) {
      // FilteredHostProps makes these a type error; JavaScript callers get the same answer here.
      const loose = props as Partial<Record<keyof FilteredHostRolesProps, unknown>>;
      if (loose.roles !== undefined) {
        throw invalid('roles together with policy', (props.roles as unknown as Role[]).map((r) => r?.name), 'give either roles (and name/instanceMetadata/audit/subnets/onLoadFailure) or a prebuilt policy, not both.');
      }
      if (!(props.policy instanceof HostPolicy)) {
        throw invalid('policy', props.policy, 'build it with HostPolicy.compose(name, roles, options).');
      }
      for (const key of ['name', 'instanceMetadata', 'audit', 'subnets', 'onLoadFailure'] as const) {
        if (loose[key] !== undefined) {
          throw invalid(`${key} together with policy`, loose[key], `set ${key} in HostPolicy.compose(…) instead; a prebuilt policy already carries it.`);
        }
      }
      return props.policy;
    }
    const options = {
      ...(props.instanceMetadata !== undefined ? { instanceMetadata: props.instanceMetadata } : {}),
      ...(props.audit !== undefined ? { audit: props.audit } : {}),
      ...(props.subnets !== undefined ? { subnets: props.subnets } : {}),
      ...(props.onLoadFailure !== undefined ? { onLoadFailure: props.onLoadFailure } : {}),
    };
    return HostPolicy.compose(props.name ?? id, props.roles ?? [], options);
  }
}
