/**
 * Peers: the other end of a flow. A CIDR block; a security group (which the network wall can
 * reference directly, but the host wall only through the CIDRs the user declares for it); or a
 * managed prefix list (referenced by id on the network wall, expanded to its CIDRs on the host).
 */
import { Cidr, FAMILIES, Family, formatAddress, parseAddress } from './address';
import { TwinwallError, show } from './errors';
import { requireLiteral } from './tokens';

export type PeerKind = 'cidr' | 'securityGroup' | 'prefixList';

/** AWS: a customer-managed prefix list holds at most 1,000 entries (its max_entries). */
export const PREFIX_LIST_MAX_ENTRIES_LIMIT = 1000;

/** Options of `Peer.securityGroup`. */
export interface SecurityGroupPeerOptions {
  /**
   * The CIDRs the group's members use (their subnet, or their fixed addresses): the host wall,
   * which cannot see security groups, matches these. Required, at least one.
   */
  readonly hostCidrs: readonly string[];
  /** The peer's name in rule ids, descriptions and reports; default "security group <id>". */
  readonly label?: string;
}

/** Options of `Peer.prefixList`. */
export interface PrefixListPeerOptions {
  /** The entries of the list, as CIDRs of one family: the host wall matches these. */
  readonly cidrs: readonly string[];
  /** The peer's name in rule ids, descriptions and reports; default "prefix list <id>". */
  readonly label?: string;
  /**
   * The list's max_entries (what AWS counts against the quota of every group referencing it);
   * default the entries given, a lower bound (a customer-managed list usually has room to grow).
   */
  readonly maxEntries?: number;
}

/**
 * Addresses of the EC2 services that AWS security groups never filter: the host wall alone
 * decides whether a process may reach them.
 */
export const AWS_LINK_LOCAL = {
  /** Amazon-provided DNS (Route 53 Resolver) on the link-local addresses. */
  dnsResolver: { 4: '169.254.169.253', 6: 'fd00:ec2::253' },
  /** The instance metadata service (IMDS). */
  instanceMetadata: { 4: '169.254.169.254', 6: 'fd00:ec2::254' },
  /** Amazon Time Sync Service. */
  timeSync: { 4: '169.254.169.123', 6: 'fd00:ec2::123' },
} as const;

export type AwsLinkLocalService = keyof typeof AWS_LINK_LOCAL;

/** What each link-local service is called in descriptions, reports and `check` output. */
export const AWS_LINK_LOCAL_LABEL: Readonly<Record<AwsLinkLocalService, string>> = {
  dnsResolver: 'Amazon-provided DNS resolver',
  instanceMetadata: 'instance metadata service',
  timeSync: 'Amazon Time Sync Service',
};

function nonEmptyId(value: string, what: string, example: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TwinwallError('OPTION_INVALID', {
      value,
      problem: `${what} ${show(value)} is empty.`,
      fix: `pass the ${what.toLowerCase()}, e.g. ${example}.`,
    });
  }
}

/**
 * The other end of a flow. Every factory returns one `Peer`: a set of CIDRs (one or both
 * families), a security group, or a managed prefix list.
 */
export class Peer {
  /** An IPv4 network, e.g. Peer.ipv4("198.51.100.0/24"). */
  public static ipv4(cidr: string): Peer {
    return Peer.fromCidr(Cidr.ipv4(cidr));
  }

  /** An IPv6 network, e.g. Peer.ipv6("2001:db8::/32"). */
  public static ipv6(cidr: string): Peer {
    return Peer.fromCidr(Cidr.ipv6(cidr));
  }

  /** A network of either family, e.g. Peer.cidr("203.0.113.0/24"). */
  public static cidr(cidr: string): Peer {
    return Peer.fromCidr(Cidr.of(cidr));
  }

  /** One address as a /32 or /128. */
  public static host(address: string): Peer {
    return Peer.fromCidr(Cidr.host(address));
  }

  /** Every IPv4 address (0.0.0.0/0). */
  public static anyIpv4(): Peer {
    return Peer.fromCidr(Cidr.anyIpv4());
  }

  /** Every IPv6 address (::/0). */
  public static anyIpv6(): Peer {
    return Peer.fromCidr(Cidr.anyIpv6());
  }

  /** Every address of both families: 0.0.0.0/0 and ::/0. */
  public static anywhere(): Peer {
    return Peer.fromCidrs([Cidr.anyIpv4(), Cidr.anyIpv6()]);
  }

  /** A network as a `Cidr` value. */
  public static fromCidr(cidr: Cidr): Peer {
    return Peer.fromCidrs([cidr]);
  }

  /** Several networks as one peer (both families allowed), e.g. a service's IPv4 and IPv6 addresses. */
  private static fromCidrs(cidrs: readonly Cidr[]): Peer {
    const label = cidrs.map((c) => (c.isAny ? `any IPv${c.family}` : c.text)).join(', ');
    return new Peer('cidr', cidrs.map((c) => c.text).join(' '), cidrs, label);
  }

  /**
   * Another security group. The network wall references it by id (which may be a Terraform
   * reference such as `otherGroup.id`); the host wall cannot see groups, so `hostCidrs` must
   * list the addresses its members use (e.g. the subnet they live in).
   *
   *   Peer.securityGroup(app.id, { hostCidrs: ["10.0.2.0/24"], label: "app tier" })
   */
  public static securityGroup(groupId: string, options: SecurityGroupPeerOptions): Peer {
    nonEmptyId(groupId, 'Security group id', '"sg-0123456789abcdef0" or otherGroup.id');
    const hostCidrs = options?.hostCidrs;
    const label = options?.label;
    if (!Array.isArray(hostCidrs) || hostCidrs.length === 0) {
      throw new TwinwallError('SG_NO_HOST_CIDR', {
        value: groupId,
        problem: `the security-group reference ${show(label ?? groupId)} has no host-side CIDRs; a host firewall cannot match a security group.`,
        fix: 'pass the CIDRs its members use, e.g. Peer.securityGroup(app.id, { hostCidrs: ["10.0.2.0/24"] }) (their subnet or fixed addresses).',
      });
    }
    const cidrs = hostCidrs.map((c) => Cidr.of(c));
    return new Peer('securityGroup', groupId, cidrs, label ?? `security group ${groupId}`);
  }

  /**
   * A managed prefix list, referenced by id on the network wall, with the CIDRs it holds for the
   * host wall. `maxEntries` is the list's `max_entries`: AWS counts a referenced list as that
   * many rules of its family against the security group's quota. Without it twinwall counts the
   * entries given, which is a lower bound (a customer-managed list usually has room to grow).
   *
   *   Peer.prefixList(list.id, { cidrs: ["198.51.100.0/24"], label: "partners", maxEntries: 20 })
   */
  public static prefixList(prefixListId: string, options: PrefixListPeerOptions): Peer {
    nonEmptyId(prefixListId, 'Prefix list id', '"pl-0123456789abcdef0"');
    const cidrs = options?.cidrs;
    const label = options?.label;
    if (!Array.isArray(cidrs) || cidrs.length === 0) {
      throw new TwinwallError('PREFIX_LIST_EMPTY', {
        value: prefixListId,
        problem: `the prefix list ${show(label ?? prefixListId)} has no CIDRs; the host wall would admit nothing while the network wall admits its entries.`,
        fix: 'pass the entries of the prefix list as CIDRs, e.g. Peer.prefixList("pl-0123…", { cidrs: ["198.51.100.0/24"] }).',
      });
    }
    const parsed = cidrs.map((c) => Cidr.of(c));
    const maxEntries = options.maxEntries;
    if (maxEntries !== undefined) {
      const name = show(label ?? prefixListId);
      const families = new Set(parsed.map((c) => c.family));
      if (families.size > 1) {
        throw new TwinwallError('PREFIX_LIST_MAX_ENTRIES', {
          value: maxEntries,
          problem: `the prefix list ${name} has maxEntries ${show(maxEntries)} but holds IPv4 and IPv6 entries; a managed prefix list has one address family.`,
          fix: 'split it into an IPv4 and an IPv6 prefix list, each with its own maxEntries.',
        });
      }
      if (typeof maxEntries !== 'number' || !Number.isInteger(maxEntries) || maxEntries < parsed.length || maxEntries > PREFIX_LIST_MAX_ENTRIES_LIMIT) {
        throw new TwinwallError('PREFIX_LIST_MAX_ENTRIES', {
          value: maxEntries,
          problem: `the prefix list ${name} has maxEntries ${show(maxEntries)}, but it holds ${parsed.length} entries and AWS allows at most ${PREFIX_LIST_MAX_ENTRIES_LIMIT}.`,
          fix: `give a whole number from ${parsed.length} to ${PREFIX_LIST_MAX_ENTRIES_LIMIT} (the list's max_entries; every rule referencing it counts that many rules).`,
        });
      }
    }
    return new Peer('prefixList', prefixListId, parsed, label ?? `prefix list ${prefixListId}`, maxEntries);
  }

  /**
   * The Amazon-provided DNS resolver on its link-local addresses (169.254.169.253 and
   * fd00:ec2::253). Security groups never filter it, so only the host wall admits or denies it.
   */
  public static awsDnsResolver(): Peer {
    return Peer.linkLocal('dnsResolver');
  }

  /** Amazon Time Sync Service (169.254.169.123 and fd00:ec2::123); host wall only. */
  public static awsTimeSync(): Peer {
    return Peer.linkLocal('timeSync');
  }

  /**
   * The VPC resolver at the VPC's base address + 2 (10.0.0.2 in 10.0.0.0/16). To the walls it is
   * an ordinary address, so it appears on both.
   */
  public static vpcResolver(vpcCidr: string): Peer {
    const vpc = Cidr.ipv4(vpcCidr);
    if (vpc.prefix > 28) {
      throw new TwinwallError('OPTION_INVALID', {
        value: vpcCidr,
        problem: `${show(vpcCidr)} is not a VPC CIDR: VPCs are /16 to /28, so base+2 would not be inside it.`,
        fix: 'pass the VPC\'s primary IPv4 CIDR, e.g. "10.0.0.0/16".',
      });
    }
    return Peer.fromCidr(Cidr.host(formatAddress(4, vpc.network + 2n)));
  }

  private static linkLocal(service: AwsLinkLocalService): Peer {
    const addrs = AWS_LINK_LOCAL[service];
    return Peer.fromCidrs([Cidr.host(addrs[4]), Cidr.host(addrs[6])]);
  }

  public readonly kind: PeerKind;
  /** The security group id or prefix list id; for CIDR peers their CIDRs, space-separated. */
  public readonly id: string;
  /** The CIDRs the host wall matches for this peer. */
  public readonly hostCidrs: readonly Cidr[];
  /** Short human label for descriptions and reports. */
  public readonly label: string;
  /** Prefix lists only: the list's max_entries, when known (what AWS counts against the quota). */
  public readonly maxEntries?: number;

  private constructor(kind: PeerKind, id: string, hostCidrs: readonly Cidr[], label: string, maxEntries?: number) {
    this.kind = kind;
    this.id = id;
    this.hostCidrs = Object.freeze([...hostCidrs]);
    this.label = label;
    if (maxEntries !== undefined) this.maxEntries = maxEntries;
    Object.freeze(this);
  }

  /** The families this peer has addresses in. */
  public get families(): Family[] {
    const fams = new Set(this.hostCidrs.map((c) => c.family));
    return FAMILIES.filter((f) => fams.has(f));
  }

  public toString(): string {
    return this.label;
  }
}

/**
 * Something that stands for a peer: a host construct (`FilteredHost`) passed wherever a `Peer` is
 * accepted (`sshAdmin({ from: [bastion] })`). Its `toPeer()` gives the peer the flow uses.
 */
export interface PeerSource {
  toPeer(): Peer;
}

/** A `Peer`, or a host that stands for one. */
export type PeerLike = Peer | PeerSource;

/** The `Peer` of `p`: itself, or what the host it names gives (OPTION_INVALID for anything else). */
export function toPeer(p: PeerLike): Peer {
  if (p instanceof Peer) return p;
  const source = p as Partial<PeerSource> | null | undefined;
  if (source !== null && typeof source === 'object' && typeof source.toPeer === 'function') {
    const peer = source.toPeer();
    if (peer instanceof Peer) return peer;
  }
  throw new TwinwallError('OPTION_INVALID', {
    value: p,
    problem: `the peer ${show(p)} is not a Peer.`,
    fix: 'build it with Peer.ipv4("198.51.100.0/24"), Peer.anyIpv6(), Peer.securityGroup(…) and so on, or pass a FilteredHost.',
  });
}

/** True when `address` (text, no mask) is one of the AWS link-local service addresses. */
export function awsLinkLocalService(address: string): AwsLinkLocalService | undefined {
  requireLiteral(address, 'The address', '"169.254.169.253"');
  const { family, value } = parseAddress(address);
  for (const [name, addrs] of Object.entries(AWS_LINK_LOCAL) as [AwsLinkLocalService, Record<Family, string>][]) {
    if (parseAddress(addrs[family]).value === value) return name;
  }
  return undefined;
}
