/**
 * lib/memo.ts, and the renderings that use it: a remembered part is made once per key, the
 * oldest key goes first, and a host's wall does not depend on which hosts were rendered before.
 */
import { HostPolicy, Peer, sshAdmin } from '../lib';
import { renderIptables, renderNftables } from '../lib/render';
import { Memo } from '../lib/memo';

describe('Memo', () => {
  it('makes a value once per key and gives it back', () => {
    const memo = new Memo<string>(4);
    let made = 0;
    const make = (v: string) => () => {
      made++;
      return v;
    };
    expect(memo.get('a', make('A'))).toBe('A');
    expect(memo.get('a', make('other'))).toBe('A');
    expect(memo.get('b', make('B'))).toBe('B');
    expect(made).toBe(2);
  });

  it('keeps at most max keys, dropping the oldest first', () => {
    const memo = new Memo<number>(2);
    memo.get('a', () => 1);
    memo.get('b', () => 2);
    memo.get('c', () => 3);
    // 'a' was dropped: it is made again; 'c' is still known.
    expect(memo.get('a', () => 10)).toBe(10);
    expect(memo.get('c', () => 30)).toBe(3);
  });
});

describe('renderNftables with shared option lines', () => {
  const roles = () => [sshAdmin({ from: [Peer.ipv4('198.51.100.0/24')] })];
  const plain = () => HostPolicy.compose('plain', roles());
  const other = () => HostPolicy.compose('other', roles(), { instanceMetadata: 'none', audit: true, subnets: ['10.0.1.0/24'] });

  it('renders a host the same whichever hosts were rendered before it', () => {
    const first = renderNftables(plain()).text;
    const between = renderNftables(other()).text;
    expect(renderNftables(plain()).text).toBe(first);
    // The other host's options reach its own lines: nothing of the first host's was reused.
    expect(between).toContain('instance metadata, nobody (instanceMetadata none)');
    expect(between).toContain('the router of subnet 10.0.1.0/24');
    expect(between).toContain('ct mark set ct mark');
    expect(first).not.toContain('instanceMetadata none');
    expect(first).not.toContain('10.0.1.1');
    expect(first).not.toContain('ct mark set ct mark');
  });
});

describe('renderIptables with shared option lines', () => {
  const roles = () => [sshAdmin({ from: [Peer.ipv4('198.51.100.0/24')] })];
  const plain = () => HostPolicy.compose('plain', roles());
  const other = () => HostPolicy.compose('other', roles(), { instanceMetadata: 'none', audit: true, subnets: ['10.0.1.0/24'] });

  it('renders a host the same whichever hosts were rendered before it, its own name first', () => {
    const first = renderIptables(plain());
    const between = renderIptables(other());
    const again = renderIptables(plain());
    expect(again.v4).toBe(first.v4);
    expect(again.v6).toBe(first.v6);
    expect(first.v4.split('\n')[0]).toBe('# twinwall host wall for host plain, IPv4 (iptables-restore, filter table).');
    expect(between.v6.split('\n')[0]).toBe('# twinwall host wall for host other, IPv6 (iptables-restore, filter table).');
    expect(between.v4).toContain('instance metadata, nobody (instanceMetadata none)');
    expect(between.v4).toContain('-d 10.0.1.1/32');
    expect(between.v4).toContain('CONNMARK');
    expect(first.v4).not.toContain('instanceMetadata none');
    expect(first.v4).not.toContain('10.0.1.1');
    expect(first.v4).not.toContain('CONNMARK');
    // The policy's own lines sit between the shared parts.
    expect(first.v4).toMatch(/# The policy: [^\n]*\n-A tw-in -s 198\.51\.100\.0\/24 /);
  });
});
