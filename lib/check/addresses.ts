/**
 * Address helpers for the checker: lenient parsing of what iptables and Terraform accept
 * (bare addresses, dotted masks, host bits), address classes, and readable set descriptions.
 */
import { AddressSet, Family, familyBits, formatAddress, parseAddress } from '../address';
import { AWS_LINK_LOCAL, AwsLinkLocalService } from '../peer';
import { IntervalSet } from './space';

const FAMILY_RANGE: Record<Family, IntervalSet> = {
  4: IntervalSet.of(0n, (1n << BigInt(familyBits(4))) - 1n),
  6: IntervalSet.of(0n, (1n << BigInt(familyBits(6))) - 1n),
};

/** Every address of a family (an IntervalSet is immutable, so this is one value per family). */
export function familyRange(family: Family): IntervalSet {
  return FAMILY_RANGE[family];
}

function maskFromDotted(text: string): number | undefined {
  const { family, value } = parseAddress(text);
  if (family !== 4) return undefined;
  const inv = ~value & 0xffffffffn;
  if ((inv & (inv + 1n)) !== 0n) return undefined; // not contiguous
  let n = 0;
  for (let v = value; v & 0x80000000n; v = (v << 1n) & 0xffffffffn) n++;
  return n;
}

/**
 * "10.0.0.0/8", "10.1.2.3" (one host), "10.0.0.0/255.0.0.0", "2001:db8::/32" → the family and
 * the inclusive interval. Host bits are masked off, as iptables does. Throws on anything else.
 */
export function parseCidrLenient(text: string): { family: Family; set: IntervalSet; text: string } {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const { family, value } = parseAddress(addrText);
  const bits = familyBits(family);
  let prefix = bits;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    if (/^\d{1,3}$/.test(p)) prefix = Number(p);
    else {
      const m = family === 4 ? maskFromDotted(p) : undefined;
      if (m === undefined) throw new Error(`${JSON.stringify(text)} has an unreadable mask`);
      prefix = m;
    }
    if (prefix > bits) throw new Error(`${JSON.stringify(text)} has a prefix longer than ${bits}`);
  }
  const hostBits = BigInt(bits - prefix);
  const first = (value >> hostBits) << hostBits;
  const last = first + (1n << hostBits) - 1n;
  return { family, set: IntervalSet.of(first, last), text: `${formatAddress(family, first)}/${prefix}` };
}

function cidrSet(text: string): IntervalSet {
  return parseCidrLenient(text).set;
}

/** Addresses that can never be one of the host's own unicast addresses on its network interface. */
const NOT_OWN: Record<Family, IntervalSet> = {
  4: ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'].map(cidrSet).reduce((a, b) => a.union(b)),
  6: ['::/128', '::1/128', 'ff00::/8', '::ffff:0:0/96'].map(cidrSet).reduce((a, b) => a.union(b)),
};

// The sets below are constants, computed once: the checker asks for them for every rule it models.
const ROUTABLE_SOURCES: Record<Family, IntervalSet> = {
  4: familyRange(4).subtract(cidrSet('127.0.0.0/8')),
  6: familyRange(6).subtract(cidrSet('::1/128')),
};

/**
 * Sources a packet leaving by a non-loopback interface can carry: anything but a loopback
 * address (the kernel refuses to route 127.0.0.0/8 or ::1 off the host).
 */
export function routableSources(family: Family): IntervalSet {
  return ROUTABLE_SOURCES[family];
}

const OWN_UNICAST: Record<Family, IntervalSet> = { 4: familyRange(4).subtract(NOT_OWN[4]), 6: familyRange(6).subtract(NOT_OWN[6]) };

/** The host's own addresses on its (non-loopback) interface: some unicast address of the family. */
export function ownUnicast(family: Family): IntervalSet {
  return OWN_UNICAST[family];
}

/** The address types `-m addrtype` names that are sets of addresses, per family (UNICAST: the rest). */
const TYPED: Record<Family, ReadonlyMap<string, IntervalSet>> = {
  4: new Map([
    ['MULTICAST', cidrSet('224.0.0.0/4')],
    ['BROADCAST', cidrSet('255.255.255.255/32').union(cidrSet('0.0.0.0/8'))],
    ['LOCAL', cidrSet('127.0.0.0/8')],
  ]),
  6: new Map([
    ['MULTICAST', cidrSet('ff00::/8')],
    ['UNSPEC', cidrSet('::/128')],
    ['LOCAL', cidrSet('::1/128')],
  ]),
};
const UNICAST: Record<Family, IntervalSet> = {
  4: [...TYPED[4].values()].reduce((rest, s) => rest.subtract(s), familyRange(4)),
  6: [...TYPED[6].values()].reduce((rest, s) => rest.subtract(s), familyRange(6)),
};

/** Address types as `-m addrtype` names them, for addresses that are not the host's own. */
export function addressesOfType(family: Family, type: string): IntervalSet {
  if (type === 'UNICAST') return UNICAST[family];
  return TYPED[family].get(type) ?? IntervalSet.EMPTY;
}

export const ADDRESS_TYPES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

/** The link-local service addresses of a family, with their service. */
export function linkLocalServices(family: Family): { service: AwsLinkLocalService; address: string; value: bigint }[] {
  return (Object.keys(AWS_LINK_LOCAL) as AwsLinkLocalService[]).map((service) => {
    const address = AWS_LINK_LOCAL[service][family];
    return { service, address, value: parseAddress(address).value };
  });
}

/** The minimal CIDR list covering exactly the set (AddressSet.toCidrs, the one cover). */
export function toCidrs(family: Family, set: IntervalSet): string[] {
  return AddressSet.fromSet(family, set).toCidrs().map((c) => c.text);
}

/** The set's cover as a list, its first `max` blocks written out and the rest counted. */
function listText(set: AddressSet, max = 6): string {
  const count = set.cidrCount;
  const items = set.toCidrs(max).map((c) => c.text);
  return count <= max ? items.join(', ') : `${items.join(', ')} … (+${count - max} more)`;
}

/** "10.0.0.0/8", "any IPv4", "any IPv6 except 2001:db8::/32", "10.0.0.1/32, 10.0.0.7/32". */
export function describeAddresses(family: Family, set: IntervalSet, universe: IntervalSet = familyRange(family)): string {
  const name = family === 4 ? 'IPv4' : 'IPv6';
  const rest = universe.subtract(set);
  const whole = universe.equals(familyRange(family));
  if (rest.isEmpty) return whole ? `any ${name}` : `any ${name} address`;
  const direct = AddressSet.fromSet(family, set);
  const missing = AddressSet.fromSet(family, rest);
  if (missing.cidrCount < direct.cidrCount) return `any ${name}${whole ? '' : ' address'} except ${listText(missing)}`;
  return listText(direct);
}
