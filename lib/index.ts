/**
 * `twinwall/core`: the pure core (no cdktf, no constructs, no provider bindings) — the vocabulary
 * hosts are written with, and the renderings of a host policy.
 *
 * This list is the public API, and only this list: every other export of lib/ is internal and
 * may change in any release. `api/twinwall-core.api.md` is its report (api-extractor);
 * `npm run api` regenerates it and `__tests__/api.test.ts` fails when the two differ, so a pull
 * request that changes the API shows it in that file.
 */
export { ERROR_CODES, TwinwallError } from './errors';
export type { ErrorCode, ErrorName, TwinwallErrorDetails } from './errors';
export { Cidr } from './address';
export type { Family } from './address';
export { Port } from './port';
export type { Protocol } from './port';
export { AWS_LINK_LOCAL, Peer } from './peer';
export type { AwsLinkLocalService, PeerKind, PeerLike, PeerSource, PrefixListPeerOptions, SecurityGroupPeerOptions } from './peer';
export type { GrantPorts } from './connections';
export { Flow, Role } from './flow';
export type { Direction, FlowOptions, RoleOptions } from './flow';
export { SERVICES, serve, service, use } from './catalog';
export type { ServiceName, ServiceRow } from './catalog';
export { customRole, dnsClient, dnsServer, mailServer, ntpClient, sshAdmin, webServer } from './roles';
export type { DnsClientOptions, DnsServerOptions, MailClientService, MailServerOptions, NtpClientOptions, SshAdminOptions, Upstream, WebServerOptions } from './roles';
export { HostPolicy, PolicyRule } from './policy';
export type { AttributedFlow, HostPolicyOptions, LoadFailureMode, MetadataAccess, Provenance, ResolvedHostPolicyOptions, RuleTarget } from './policy';
export { UserDataPart, renderHost, renderHostWall } from './render';
export type {
  HostFirewall,
  HostOnlyAccess,
  HostOnlyDecision,
  HostRenderOptions,
  HostRendering,
  FallbackRuleset,
  HostWallRendering,
  IptablesRenderOptions,
  IptablesRuleset,
  NftablesRuleset,
  SecurityGroupPlan,
  SecurityGroupRenderOptions,
  SecurityGroupRendering,
  SecurityGroupRuleCounts,
  SgIpProtocol,
  SgRuleSpec,
  UserData,
  UserDataOptions,
  UserDataPartKind,
} from './render';
export { formatHostSummary } from './report/summary';
