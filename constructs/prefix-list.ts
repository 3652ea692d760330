/**
 * TwinwallPrefixList: a customer-managed prefix list (aws_ec2_managed_prefix_list) twinwall
 * creates from literal CIDRs, and the peer that references it. The way to ask for a prefix list:
 * every security-group rule that references it counts as its `maxEntries` rules of its family
 * (as AWS counts it), however many entries it holds, so a long address list used by one rule
 * costs less of the quota than one rule per CIDR only when maxEntries is below that count; the
 * list's real gain is that several hosts and rules share one list and it can change without
 * touching the groups. The host wall matches the same CIDRs (an ipset when they are many).
 */
import { Construct } from 'constructs';
import { Ec2ManagedPrefixList } from '@cdktf/provider-aws/lib/ec2-managed-prefix-list';
import { Cidr } from '../lib/address';
import { TwinwallError, locate, show } from '../lib/errors';
import { checkName } from '../lib/flow';
import { Peer } from '../lib/peer';

export interface TwinwallPrefixListProps {
  /** The list's name in AWS and its label in rule ids and descriptions; default the construct id. */
  readonly name?: string;
  /** The entries: literal CIDRs of one address family. */
  readonly cidrs: readonly string[];
  /**
   * The list's max_entries (what AWS counts against every referencing group's quota, per rule);
   * default the number of entries. At most 1,000.
   */
  readonly maxEntries?: number;
  /** A description for every entry (default "twinwall: <name>"). */
  readonly entryDescription?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

export class TwinwallPrefixList extends Construct {
  public readonly resource: Ec2ManagedPrefixList;
  /** The peer to use in roles: references the list on the network wall, its CIDRs on the host. */
  public readonly peer: Peer;
  public readonly maxEntries: number;

  public constructor(scope: Construct, id: string, props: TwinwallPrefixListProps) {
    super(scope, id);
    const { name, cidrs, maxEntries } = locate(this.node.path, () => {
      const name = props.name ?? id;
      checkName(name, 'The prefix list name');
      if (!Array.isArray(props.cidrs) || props.cidrs.length === 0) {
        throw new TwinwallError('PREFIX_LIST_EMPTY', {
          value: name,
          problem: `the prefix list ${show(name)} has no CIDRs.`,
          fix: 'pass its entries, e.g. cidrs: ["198.51.100.0/24"].',
        });
      }
      const cidrs = props.cidrs.map((c) => Cidr.of(c));
      const maxEntries = props.maxEntries ?? cidrs.length;
      // Validates maxEntries and the single family before anything is created.
      Peer.prefixList('pl-pending', { cidrs: cidrs.map(String), label: name, maxEntries });
      return { name, cidrs, maxEntries };
    });
    this.maxEntries = maxEntries;
    const description = props.entryDescription ?? `twinwall: ${name}`;
    this.resource = new Ec2ManagedPrefixList(this, 'PrefixList', {
      name,
      addressFamily: cidrs[0].family === 4 ? 'IPv4' : 'IPv6',
      maxEntries,
      entry: cidrs.map((c) => ({ cidr: c.text, description })),
      tags: { Name: name, ...(props.tags ?? {}) },
    });
    this.peer = locate(this.node.path, () => Peer.prefixList(this.resource.id, { cidrs: cidrs.map(String), label: name, maxEntries }));
  }
}
