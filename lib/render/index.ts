/**
 * The three renderings of a host policy, pure (no cdktf): the network wall (security-group rule
 * specs), the host wall (iptables-restore text per address family) and the user-data that
 * installs the host wall. Adapters (constructs/, a CLI) call `renderHost` once per host.
 */
import { HostPolicy } from '../policy';
import { IptablesRenderOptions, renderIptables } from './iptables';
import { SecurityGroupRenderOptions, renderSecurityGroupRules } from './security-groups';
import { renderUserData } from './cloud-config';

export * from './iptables';
export * from './security-groups';
export * from './cloud-config';

/** Options for the user-data rendering, as `renderUserData` accepts them. */
export type UserDataRenderOptions = NonNullable<Parameters<typeof renderUserData>[1]>;

export interface HostRendering {
  /** The policy every rendering below came from. */
  readonly policy: HostPolicy;
  /** Network wall: one spec per (rule, CIDR), plus the decisions only the host wall can make. */
  readonly securityGroups: ReturnType<typeof renderSecurityGroupRules>;
  /** Host wall: iptables-restore text for IPv4 and IPv6. */
  readonly iptables: ReturnType<typeof renderIptables>;
  /** The #cloud-config user-data that installs and loads the host wall. */
  readonly userData: ReturnType<typeof renderUserData>;
}

/** How the walls are laid out: security-group split limit, ipset threshold. */
export type HostRenderOptions = SecurityGroupRenderOptions & IptablesRenderOptions;

/**
 * Render both walls and the user-data of one host policy. Same policy → identical output. The
 * user-data names the host (`host` defaults to the policy's name).
 */
export function renderHost(policy: HostPolicy, userDataOptions: UserDataRenderOptions = {}, options: HostRenderOptions = {}): HostRendering {
  const securityGroups = renderSecurityGroupRules(policy, options.maxSecurityGroups === undefined ? {} : { maxSecurityGroups: options.maxSecurityGroups });
  const iptables = renderIptables(policy, options.ipsetThreshold === undefined ? {} : { ipsetThreshold: options.ipsetThreshold });
  const userData = renderUserData(iptables, { host: policy.name, ...userDataOptions });
  return Object.freeze({ policy, securityGroups, iptables, userData });
}
