/**
 * The renderings of a host policy, pure (no cdktf): the network wall (security-group rule
 * specs), the host wall (iptables-restore text per address family and the fallback loaded before
 * it, or one nftables file) and the user-data that installs the host wall. Adapters (constructs/,
 * a CLI) call `renderHost` once per host.
 */
import { TwinwallError, show } from '../errors';
import { HostPolicy } from '../policy';
import { FallbackRuleset, IptablesRenderOptions, IptablesRuleset, renderFallback, renderIptables } from './iptables';
import { NftablesRuleset, renderNftables, renderNftablesFallback } from './nftables';
import { SecurityGroupRenderOptions, SecurityGroupRendering, renderSecurityGroupRules } from './security-groups';
import { UserData, UserDataOptions, renderUserData } from './cloud-config';

export * from './iptables';
export * from './nftables';
export * from './security-groups';
export * from './cloud-config';

export interface HostRendering {
  /** The policy every rendering below came from. */
  readonly policy: HostPolicy;
  /** Network wall: one spec per (rule, CIDR), plus the decisions only the host wall can make. */
  readonly securityGroups: SecurityGroupRendering;
  /** The host wall's backend, which the user-data installs. */
  readonly hostFirewall: HostFirewall;
  /**
   * Host wall: iptables-restore text for IPv4 and IPv6 (with hostFirewall 'nftables', the same
   * wall in iptables form; the user-data ships `nftables`, which the summary and the checker read).
   */
  readonly iptables: IptablesRuleset;
  /** The fallback each family gets before its real table (iptables; undefined with onLoadFailure 'open'). */
  readonly fallback?: FallbackRuleset;
  /** Host wall with hostFirewall 'nftables': one nft -f file, table inet twinwall. */
  readonly nftables?: NftablesRuleset;
  /** Its fallback (undefined with onLoadFailure 'open'). */
  readonly nftablesFallback?: NftablesRuleset;
  /** The user-data that installs and loads the host wall (and carries the user's own parts after it). */
  readonly userData: UserData;
}

/** The host wall's backend: iptables-restore text plus ipset, or one nftables file. */
export type HostFirewall = 'iptables' | 'nftables';

export const HOST_FIREWALLS: readonly HostFirewall[] = ['iptables', 'nftables'];

/** The backend a host gets when it does not choose one. */
export const DEFAULT_HOST_FIREWALL: HostFirewall = 'nftables';

/**
 * How the walls are laid out (security-group split limit, address-set threshold, host-wall
 * backend) and what the user-data says (`host`, default the policy's name).
 */
export interface HostRenderOptions extends SecurityGroupRenderOptions, IptablesRenderOptions, UserDataOptions {
  /** The host wall's backend (default 'nftables'); both have the same semantics. */
  readonly hostFirewall?: HostFirewall;
}

/** The host wall in the backend the host chose. */
export type HostWallRendering =
  | { readonly backend: 'iptables'; readonly iptables: IptablesRuleset }
  | { readonly backend: 'nftables'; readonly nftables: NftablesRuleset };

/** The validated `hostFirewall` option. */
export function hostFirewallOf(policy: HostPolicy, options: Pick<HostRenderOptions, 'hostFirewall'>): HostFirewall {
  const backend = options.hostFirewall ?? DEFAULT_HOST_FIREWALL;
  if (!HOST_FIREWALLS.includes(backend)) {
    throw new TwinwallError('OPTION_INVALID', {
      value: backend,
      path: [policy.name],
      problem: `hostFirewall ${show(backend)} is not a host-wall backend.`,
      fix: `leave it out (default '${DEFAULT_HOST_FIREWALL}') or give one of ${HOST_FIREWALLS.map((b) => `'${b}'`).join(', ')}.`,
    });
  }
  return backend;
}

/** Render the host wall alone, in the backend `hostFirewall` selects. */
export function renderHostWall(policy: HostPolicy, options: HostRenderOptions = {}): HostWallRendering {
  const threshold = options.ipsetThreshold === undefined ? {} : { ipsetThreshold: options.ipsetThreshold };
  return hostFirewallOf(policy, options) === 'nftables'
    ? Object.freeze({ backend: 'nftables' as const, nftables: renderNftables(policy, threshold) })
    : Object.freeze({ backend: 'iptables' as const, iptables: renderIptables(policy, threshold) });
}

/**
 * Render both walls and the user-data of one host policy. Same policy and options → identical
 * output.
 */
export function renderHost(policy: HostPolicy, options: HostRenderOptions = {}): HostRendering {
  const hostFirewall = hostFirewallOf(policy, options);
  const securityGroups = renderSecurityGroupRules(policy, options.maxSecurityGroups === undefined ? {} : { maxSecurityGroups: options.maxSecurityGroups });
  const threshold = options.ipsetThreshold === undefined ? {} : { ipsetThreshold: options.ipsetThreshold };
  const onLoadFailure = policy.options.onLoadFailure;
  const host = options.host ?? policy.name;
  const parts = options.userDataParts === undefined ? {} : { userDataParts: options.userDataParts };
  if (hostFirewall === 'nftables') {
    const nftables = renderNftables(policy, threshold);
    const nftablesFallback = onLoadFailure === 'lockdown' ? renderNftablesFallback(policy) : undefined;
    const userData = renderUserData({ nftables: nftables.text, ...(nftablesFallback === undefined ? {} : { fallback: nftablesFallback.text }) }, { host, onLoadFailure, ...parts });
    // The iptables form of an nftables wall ships nowhere (the user-data carries the nftables
    // file): rendered on its first read, once. renderNftables has already refused whatever
    // renderIptables would (the same policy and threshold checks), so reading it cannot throw.
    let iptables: IptablesRuleset | undefined;
    return Object.freeze({
      policy,
      securityGroups,
      hostFirewall,
      get iptables(): IptablesRuleset {
        return (iptables ??= renderIptables(policy, threshold));
      },
      nftables,
      ...(nftablesFallback === undefined ? {} : { nftablesFallback }),
      userData,
    });
  }
  const iptables = renderIptables(policy, threshold);
  const fallback = onLoadFailure === 'lockdown' ? renderFallback(policy) : undefined;
  const userData = renderUserData({ ...iptables, ...(fallback === undefined ? {} : { fallback }) }, { host, onLoadFailure, ...parts });
  return Object.freeze({ policy, securityGroups, hostFirewall, iptables, ...(fallback === undefined ? {} : { fallback }), userData });
}
