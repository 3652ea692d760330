/**
 * What the lint checks look at: a neutral description of one host's two walls. It is built
 * either from a host policy's renderings (at synth, `subjectFromRendering`) or from the
 * synthesized Terraform JSON (in `twinwall report`, from the checker's artefact model), so each
 * check is written once and judges exactly what would be deployed, including rules twinwall did
 * not write.
 */
import { Family } from '../address';
import { Direction } from '../flow';
import { Provenance } from '../policy';
import { LintId } from './rule';

export type LintPeer =
  | { readonly kind: 'cidr'; readonly cidr: string; readonly family: Family; readonly prefix: number }
  | { readonly kind: 'securityGroup'; readonly id: string }
  | { readonly kind: 'prefixList'; readonly id: string };

/** One security-group rule, whatever resource kind it came from. */
export interface LintSgRule {
  /** Where it is: a Terraform resource address, or a construct path. */
  readonly source: string;
  readonly direction: Direction;
  /** "tcp", "udp", "icmp", "icmpv6", "all", or another IP protocol number as text ("47"). */
  readonly protocol: string;
  /** TCP/UDP port range; absent means every port. */
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly peer: LintPeer;
  /** The rule's description as written; undefined or "" when it has none. */
  readonly description?: string;
  /** The roles, services and reasons behind it (empty when no twinwall role asked for it). */
  readonly because: readonly Provenance[];
  /**
   * How many rules AWS counts for it per address family (quota). Default: 1 in the CIDR's family;
   * a group reference 1 in each; a prefix list 1 in each (AWS counts its maximum entries, which
   * the artefacts may not say, so this is a lower bound).
   */
  readonly quotaWeight?: Readonly<Record<Family, number>>;
}

export interface LintGroup {
  /** The group's name for messages: a resource address or construct path. */
  readonly name: string;
  readonly rules: readonly LintSgRule[];
}

/**
 * What a host's table for one family does: drops what it does not admit ("enforcing"), logs and
 * admits everything ("audit"), admits everything without being twinwall's audit mode
 * ("accept-all"), is not shipped ("absent"), or cannot be told ("unknown").
 */
export type TableState = 'enforcing' | 'audit' | 'accept-all' | 'absent' | 'unknown';

/** Who on the host may open tcp/80 to the instance metadata service, as the host wall decides it. */
export type MetadataReach = 'root-only' | 'all-users' | 'some-users' | 'none' | 'unknown';

export interface LintHostWall {
  readonly tables: Readonly<Record<Family, TableState>>;
  readonly metadata: MetadataReach;
}

export interface Suppression {
  readonly id: LintId;
  readonly reason: string;
}

export interface LintSubject {
  readonly stack?: string;
  readonly host: string;
  /** Where the host is: a construct path, or the instance / launch template resource address. */
  readonly location: string;
  /** Every security group attached to the host. */
  readonly groups: readonly LintGroup[];
  readonly hostWall: LintHostWall;
  /** Why we know the host has IPv6 ("ipv6_address_count = 1"), or undefined when it has none we can see. */
  readonly ipv6?: string;
  /** Whether the instance metadata endpoint is enabled (the AWS default) on the instance. */
  readonly metadataEndpoint: 'enabled' | 'disabled';
  readonly suppressions: readonly Suppression[];
}

/** A host with no host wall at all: every family admitted, metadata open to every user. */
export const NO_HOST_WALL: LintHostWall = Object.freeze({ tables: Object.freeze({ 4: 'absent', 6: 'absent' }), metadata: 'all-users' });
