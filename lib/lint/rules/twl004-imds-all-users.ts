/** TWL004: every local user may reach the instance metadata service. */
import { LintRule } from '../rule';

export const TWL004: LintRule = {
  id: 'TWL004',
  name: 'imds-all-users',
  level: 'warning',
  title: 'every local user may reach the instance metadata service (and read the instance role credentials)',
  fix: 'keep instanceMetadata "root-only" (the default) or "none"; a compromised daemon then cannot read the credentials.',
  references: ['AWS IMDS: limit access with local firewall rules'],
  check: (subject) => {
    if (subject.metadataEndpoint === 'disabled') return [];
    const reach = subject.hostWall.metadata;
    if (reach !== 'all-users' && reach !== 'some-users') return [];
    const how =
      subject.hostWall.tables[4] === 'absent'
        ? 'the host ships no host wall, so every local process'
        : reach === 'all-users'
          ? 'the host wall lets every local user'
          : 'the host wall lets users other than root';
    return [{ location: subject.location, message: `${how} open tcp/80 to the instance metadata service (169.254.169.254, fd00:ec2::254) and read the instance role's credentials.` }];
  },
};
