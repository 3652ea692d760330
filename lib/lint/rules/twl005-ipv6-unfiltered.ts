/** TWL005: a host with IPv6 whose host wall does not filter IPv6. */
import { LintRule } from '../rule';

export const TWL005: LintRule = {
  id: 'TWL005',
  name: 'ipv6-unfiltered',
  level: 'error',
  title: 'a host with IPv6 whose host wall ships no IPv6 table, or one that admits everything',
  fix: 'ship an ip6tables table with DROP policies (FilteredHost does) in the instance user-data, or give the host no IPv6 address.',
  references: [],
  check: (subject) => {
    if (subject.ipv6 === undefined) return [];
    const state = subject.hostWall.tables[6];
    if (state !== 'absent' && state !== 'accept-all') return [];
    const what = state === 'absent' ? 'ships no IPv6 table' : 'has an IPv6 table that admits everything';
    return [{ location: subject.location, message: `the host has IPv6 (${subject.ipv6}) but its host wall ${what}: IPv6 traffic the security group admits reaches every service, and the host may send IPv6 anywhere the group allows.` }];
  },
};
