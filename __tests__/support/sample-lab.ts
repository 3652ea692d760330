/**
 * The sample server's lab (documentation ranges only): the host's addresses and the world the
 * peer namespace plays, shared by the kernel tests of both host-wall backends.
 */
export const HOST4 = '203.0.113.10';
export const HOST6 = '2001:db8:1::10';
export const GW4 = '203.0.113.1';
export const GW6 = '2001:db8:1::1';
export const RESOLVER_A = '198.51.100.53';
export const RESOLVER_B = '198.51.100.54';
/** Next door to the resolvers: the /32s must be exact. */
export const NOT_A_RESOLVER = '198.51.100.55';
export const OUTSIDE4 = '203.0.113.99';
export const OUTSIDE6 = '2001:db8:ff::99';
/** Inside ADMIN_LAN 192.0.2.0/24. */
export const ADMIN4 = '192.0.2.10';
/** Inside ADMIN_LAN6 2001:db8:a::/48. */
export const ADMIN6 = '2001:db8:a::10';
export const IMDS4 = '169.254.169.254';
export const IMDS6 = 'fd00:ec2::254';
/** The peer owns it; the host's duplicate address detection must notice. */
export const DEFENDED6 = '2001:db8:1::66';
export const FORGED4 = '203.0.113.77';
export const FORGED6 = '2001:db8:1::77';
/** The unprivileged uid probes run as (nobody). */
export const NOBODY = 65534;
