/**
 * `twinwall check` on the example app's real synthesized artefacts: both walls agree on every
 * host (with the documented exceptions listed), and each mutation — one change in one wall — is
 * reported with a line naming the difference.
 */
import * as fs from 'fs';
import { CheckReport, StackInput, checkStacks, formatReport, hasFindings } from '../lib/check';
import { Json, clone, editTable, editUserData, readStacks, removeTable, resourceNamed, synthExample } from './support/artefacts';

let outdir: string;
let stacks: StackInput[];

beforeAll(() => {
  // The iptables wall: the mutations below edit its tables (check-nft.test.ts mutates the nftables wall).
  outdir = synthExample({ hostFirewall: 'iptables' });
  stacks = readStacks(outdir);
}, 60000);

afterAll(() => {
  if (outdir !== undefined) fs.rmSync(outdir, { recursive: true, force: true });
});

/** Mutate the staging stack's JSON; check every stack; return the findings of staging/sample. */
function mutate(change: (tf: Json) => void, host = 'staging/sample'): { report: CheckReport; lines: string[] } {
  const copy = stacks.map((s) => ({ name: s.name, json: clone(s.json) }));
  change((copy.find((s) => s.name === 'staging') as StackInput).json);
  const report = checkStacks(copy);
  const h = report.hosts.find((x) => x.label === host);
  if (h === undefined) throw new Error(`no host ${host}`);
  // Only the mutated host changes.
  for (const other of report.hosts) if (other.label !== host) expect(other.findings).toEqual([]);
  return { report, lines: h.findings.map((f) => f.text) };
}

const sampleInstance = (tf: Json): Json => resourceNamed(tf, 'aws_instance', 'sample_Instance_')[1];

describe('twinwall check on the example app', () => {
  it('finds the walls of every host in agreement', () => {
    const report = checkStacks(stacks);
    expect(report.hosts.map((h) => h.label)).toEqual([
      'production/app', 'production/db', 'production/resolver', 'production/sample', 'production/web',
      'staging/app', 'staging/db', 'staging/resolver', 'staging/sample', 'staging/web',
    ]);
    for (const h of report.hosts) expect({ host: h.label, findings: h.findings.map((f) => f.text) }).toEqual({ host: h.label, findings: [] });
    expect(hasFindings(report)).toBe(false);
  });

  it('lists the exceptions it applied and what it verified: the host-only part as recorded, IMDS for root only, DHCP, and the app-tier reference through its CIDRs', () => {
    const report = checkStacks(stacks);
    const web = report.hosts.find((h) => h.label === 'staging/web');
    const text = (web?.exceptions ?? []).join('\n');
    expect(text).toMatch(/host-only destination 169\.254\.169\.254 \(instance metadata service, egress\).*tcp\/80 to 169\.254\.169\.254\/32 for uid 0 only/);
    expect(text).toMatch(/host-only destination fd00:ec2::254/);
    expect(text).toMatch(/host-only part, IPv4 ingress: the host wall admits by itself, present exactly as the record requires \(security groups do not filter it\): DHCP server replies, so leases renew \(ingress udp\/68 \(source port 67\) from any IPv4\) by INPUT rule \d+/);
    expect(text).toMatch(/host-only part, IPv4 egress: .*DHCP client to broadcast only, so leases renew \(egress udp\/67 \(source port 68\) to 255\.255\.255\.255\/32\) by OUTPUT rule \d+; DHCP client to the router of subnet 10\.10\.1\.0\/24 only, so leases renew \(egress udp\/67 \(source port 68\) to 10\.10\.1\.1\/32\) by OUTPUT rule \d+/);
    expect(text).toMatch(/IPv4 fallback as recorded \(onLoadFailure lockdown, \/etc\/iptables\/fallback\.v4 and bootcmd's copy\): DROP policies and all \d+ core rules .* and 1 admin ingress rule, none admitting more than the real table/);
    expect(text).toMatch(/host-only part, IPv6 ingress: .*router advertisement from on-link only \(RFC 4890\) \(ingress icmpv6 type 134 from any IPv6 with hop limit 255\) by INPUT rule \d+/);
    expect(text).toMatch(/IPv4 host-only part as recorded \(audit off, instanceMetadata root-only, onLoadFailure lockdown, subnets 10\.10\.1\.0\/24\): all \d+ rules outside the policy chains are present exactly as the renderer writes them, with policies INPUT DROP, FORWARD DROP, OUTPUT DROP — loopback; .*DHCP server replies.*source address is not this host \(forged\).*instance metadata, root only/);
    expect(text).toMatch(/IPv6 host-only part as recorded .*neighbour solicitation from on-link only \(RFC 4890\)/);
    expect(text).toMatch(/security-group reference: aws_vpc_security_group_egress_rule\.web_egress-tcp-8080-to-sg-app-hosts_\w+ names aws_security_group\.app_SecurityGroup_\w+; compared through its host-side CIDRs 10\.10\.2\.0\/24/);
    expect(formatReport(report)).toMatch(/twinwall check: 10 host\(s\), the walls agree/);
  });
});

describe('twinwall check reports each mutation of one wall', () => {
  it('an egress rule dropped from the security group', () => {
    const { lines } = mutate((tf) => {
      const [name] = resourceNamed(tf, 'aws_vpc_security_group_egress_rule', 'sample_egress-tcp-25-to-0-0-0-0-0');
      delete tf.resource.aws_vpc_security_group_egress_rule[name];
    });
    expect(lines).toEqual([
      expect.stringMatching(/^egress tcp\/25 to any IPv4 except 169\.254\.169\.123\/32, 169\.254\.169\.253\/32, 169\.254\.169\.254\/32: the host wall admits it \(OUTPUT rule \d+ → tw-out rule 1 "mailServer\/smtp: delivering mail to other mail servers" \(ACCEPT\)\), the network wall does not$/),
    ]);
  });

  it('a CIDR widened in the security group', () => {
    const { lines } = mutate((tf) => {
      const [, rule] = resourceNamed(tf, 'aws_vpc_security_group_ingress_rule', 'sample_ingress-tcp-22-from-192-0-2-0-24');
      rule.cidr_ipv4 = '192.0.0.0/16';
    });
    expect(lines).toEqual([
      expect.stringMatching(/^ingress tcp\/22 from 192\.0\.0\.0\/23, 192\.0\.3\.0\/24, 192\.0\.4\.0\/22, 192\.0\.8\.0\/21, 192\.0\.16\.0\/20, 192\.0\.32\.0\/19 … \(\+2 more\): the network wall admits it \(aws_vpc_security_group_ingress_rule\.sample_ingress-tcp-22-from-192-0-2-0-24_\w+ "sshAdmin: ssh - administration from declared admin networks"\), the host wall does not$/),
    ]);
  });

  it('a port added to the iptables table', () => {
    const { lines } = mutate((tf) =>
      editUserData(sampleInstance(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^(-A tw-in .*--dport 22 .*)$/m, '$1\n-A tw-in -p tcp -m tcp --dport 8443 -m conntrack --ctstate NEW -j ACCEPT'))),
    );
    expect(lines).toEqual([expect.stringMatching(/^ingress tcp\/8443 from any IPv4 except 169\.254\.169\.123\/32, 169\.254\.169\.253\/32, 169\.254\.169\.254\/32: the host wall admits it \(INPUT rule \d+ → tw-in rule 2 \(ACCEPT\)\), the network wall does not$/)]);
  });

  it('the IPv6 table removed from the user-data: the host keeps the IPv6 fallback, and check models that', () => {
    const { lines } = mutate((tf) => editUserData(sampleInstance(tf), (cfg) => removeTable(cfg, 6)));
    expect(lines[0]).toBe("the user-data ships no IPv6 table (no write_files /etc/iptables/rules.v6, no bootcmd copy): the host keeps IPv6's fallback (/etc/iptables/fallback.v6), which admits admin ingress, DHCP and neighbour discovery only");
    // The loader leaves the fallback in place (onLoadFailure lockdown): what the groups admit
    // beyond admin ingress is dropped on the host, and the host-only part is the fallback's.
    const ll = 'any IPv6 except fd00:ec2::123/128, fd00:ec2::253/128, fd00:ec2::254/128';
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^ingress tcp/25 from ${ll.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the network wall admits it \\(aws_vpc_security_group_ingress_rule\\.sample_ingress-tcp-25-from-x-0_\\w+ "mailServer: smtp - receiving mail from other mail servers"\\), the host wall does not$`)));
    expect(lines).toContainEqual(expect.stringMatching(/^egress tcp\/25 to any IPv6 except .*: the network wall admits it .*, the host wall does not$/));
    expect(lines).toContainEqual(expect.stringMatching(/^IPv6 host-only part: chain tw-in is missing/));
    // Nothing is admitted on the host that the fallback does not admit: no "accepts everything".
    expect(lines.filter((l) => /accepts everything/.test(l))).toEqual([]);
    expect(lines.filter((l) => /^(ingress|egress) (tcp|udp)\/.*: the host wall admits it/.test(l))).toEqual([]);
  });

  it('the source-address check removed from the iptables table', () => {
    const { lines } = mutate((tf) => editUserData(sampleInstance(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^-A OUTPUT -m addrtype ! --src-type LOCAL .*\n/m, ''))));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).toContainEqual(expect.stringMatching(/^egress tcp\/25 to any IPv4 except 169\.254\.169\.254\/32 from a forged source address \(not one of the host's\): the host wall lets it out \(OUTPUT rule \d+ → tw-out rule 1 .*packets with a forged source must be dropped$/));
    // The host-only part names the missing rule; the flows show what it lets out.
    expect(lines[0]).toMatch(/^IPv4 host-only part: OUTPUT lacks "source address is not this host \(forged\)" \(-m addrtype ! --src-type LOCAL -j tw-out-spoof\) \(rule \d+ in the host wall the renderer writes\), which the record \(audit off, instanceMetadata root-only, onLoadFailure lockdown, subnets 10\.10\.1\.0\/24\) requires$/);
    expect(lines.slice(1).every((l) => l.includes('forged source'))).toBe(true);
  });

  it('the hostile comment of issue #13: read as the kernel reads it, an unconditional tcp/4444 ACCEPT', () => {
    const hostile = `-A tw-out -p tcp -m tcp --dport 4444 -m comment --comment '"' -d 10.10.0.2/32 -m comment --comment '" -m comment --comment dnsClient/dns' -j ACCEPT`;
    const { lines } = mutate((tf) => editUserData(sampleInstance(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^(-A tw-out .*)$/m, `$1\n${hostile}`))));
    expect(lines).toEqual([expect.stringMatching(/^egress tcp\/4444 to any IPv4 except 169\.254\.169\.123\/32, 169\.254\.169\.253\/32, 169\.254\.169\.254\/32: the host wall admits it \(OUTPUT rule \d+ → tw-out rule 2 "'' -d 10\.10\.0\.2\/32 -m comment --comment ' dnsClient\/dns'" \(ACCEPT\)\), the network wall does not$/)]);
  });

  it('the rule accepting DHCP server replies removed (issue #13): a finding, and DHCP no longer listed as verified', () => {
    const { report, lines } = mutate((tf) => editUserData(sampleInstance(tf), (cfg) => editTable(cfg, 4, (t) => t.replace(/^-A INPUT -p udp -m udp --sport 67 --dport 68 .*\n/m, ''))));
    expect(lines).toEqual([expect.stringMatching(/^IPv4 host-only part: INPUT lacks "DHCP server replies, so leases renew" \(-p udp -m udp --sport 67 --dport 68 -j ACCEPT\) \(rule \d+ in the host wall the renderer writes\), which the record \(audit off, instanceMetadata root-only, onLoadFailure lockdown, subnets 10\.10\.1\.0\/24\) requires$/)]);
    const sample = report.hosts.find((h) => h.label === 'staging/sample');
    expect(sample?.exceptions.join('\n')).not.toMatch(/IPv4 host-only part as recorded/);
  });

  it('a router advertisement admitted by a policy chain: conntrack leaves ICMPv6 neighbour discovery untracked, so it is a first packet too', () => {
    const { lines } = mutate((tf) => editUserData(sampleInstance(tf), (cfg) => editTable(cfg, 6, (t) => t.replace(/^(-A tw-in .*)$/m, '$1\n-A tw-in -p ipv6-icmp -m icmp6 --icmpv6-type 134 -j ACCEPT'))));
    // With hop limit 255 the host-only part admits it already (RFC 4890); any other hop limit
    // reaches the policy chain, which now admits it and the security groups do not.
    expect(lines).toEqual([expect.stringMatching(/^ingress icmpv6 type 134 from any IPv6 except fd00:ec2::123\/128, fd00:ec2::253\/128, fd00:ec2::254\/128 with hop limit 0-254: the host wall admits it \(INPUT rule \d+ → tw-in rule 2 \(ACCEPT\)\), the network wall does not$/)]);
  });

  it('a bootcmd copy that no longer matches write_files', () => {
    const { lines } = mutate((tf) =>
      editUserData(sampleInstance(tf), (cfg) => {
        const file = cfg.write_files.find((f: Json) => f.path === '/etc/iptables/rules.v4');
        file.content = file.content.replace('--dport 25 ', '--dport 26 ');
      }),
    );
    expect(lines[0]).toMatch(/^bootcmd's first-boot copy of the IPv4 table differs from \/etc\/iptables\/rules\.v4 \(line \d+: /);
  });

  it('an unreadable reference record is undecidable, not agreement', () => {
    const { lines } = mutate((tf) => {
      const [, rule] = resourceNamed(tf, 'aws_vpc_security_group_egress_rule', 'web_egress-tcp-8080-to-sg-app-hosts');
      delete rule.tags;
    }, 'staging/web');
    expect(lines).toEqual([
      expect.stringMatching(/^egress tcp\/8080 to any IPv4: undecidable \(network wall: .*no host-side CIDRs are recorded for aws_security_group\.app_SecurityGroup_\w+/),
      expect.stringMatching(/^egress tcp\/8080 to any IPv6: undecidable/),
    ]);
  });
});
