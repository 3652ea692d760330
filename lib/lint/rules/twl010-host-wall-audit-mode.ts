/** TWL010: the host wall is in audit mode. */
import { FAMILIES } from '../../address';
import { LintRule } from '../rule';

export const TWL010: LintRule = {
  id: 'TWL010',
  name: 'host-wall-audit-mode',
  level: 'warning',
  title: 'the host wall is in audit mode: it logs what it would drop, and drops nothing',
  fix: 'switch audit off once the logs show no legitimate traffic being caught (audit: false).',
  references: [],
  check: (subject) => {
    const families = FAMILIES.filter((f) => subject.hostWall.tables[f] === 'audit');
    if (families.length === 0) return [];
    return [{ location: subject.location, message: `the host wall (${families.map((f) => `IPv${f}`).join(', ')}) is in audit mode: it logs what it would drop and lets it through, so only the security group filters.` }];
  },
};
