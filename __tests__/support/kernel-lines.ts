/**
 * Kernel LOG lines for the learn tests, in dmesg form, as the kernel writes them for twinwall's
 * rules (nf_log_syslog's field order).
 */

/** One kernel line in dmesg form, as the kernel writes it for twinwall's rules. */
export function kline(direction: 'ingress' | 'egress', src: string, dst: string, proto: 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6', dpt: number, opts: { uid?: number; reason?: string; t?: number; spt?: number } = {}): string {
  const dev = direction === 'ingress' ? 'IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00' : 'IN= OUT=eth0';
  const l4 = proto === 'TCP' ? `SPT=${opts.spt ?? 40000} DPT=${dpt} WINDOW=64240 RES=0x00 SYN URGP=0` : proto === 'UDP' ? `SPT=${opts.spt ?? 40000} DPT=${dpt} LEN=20` : `TYPE=${dpt} CODE=0 ID=1 SEQ=1`;
  const uid = opts.uid !== undefined ? ` UID=${opts.uid} GID=${opts.uid}` : '';
  return `[${(opts.t ?? 100).toFixed(6).padStart(12)}] twinwall ${direction} audit${opts.reason ? ` ${opts.reason}` : ''}: ${dev} SRC=${src} DST=${dst} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=${proto} ${l4}${uid} `;
}

/**
 * A recursive resolver's audit lines (dmesg form) at `host`: clients from 10.0.0.0/16, port 53 to
 * forty addresses, NTP to Amazon, SSH from forty addresses, an INVALID packet, metadata read by
 * root, ICMPv6 echo in.
 */
export function resolverLines(host: string): string[] {
  return [
    ...[1, 2, 3].map((i) => kline('ingress', `10.0.0.${i}`, host, 'UDP', 53)),
    ...Array.from({ length: 40 }, (_, i) => kline('egress', host, `192.0.2.${i + 1}`, 'UDP', 53)),
    kline('egress', host, '169.254.169.123', 'UDP', 123, { uid: 104 }),
    ...Array.from({ length: 40 }, (_, i) => kline('ingress', `198.51.100.${i + 1}`, host, 'TCP', 22)),
    kline('ingress', '192.0.2.9', host, 'TCP', 443, { reason: 'inv' }),
    kline('egress', host, '169.254.169.254', 'TCP', 80, { reason: 'imds', uid: 0 }),
    kline('ingress', '2001:db8:ff::8', '2001:db8:2::20', 'ICMPv6', 128),
  ];
}
