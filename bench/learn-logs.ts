/**
 * Synthetic logs for `twinwall learn`, shared by the benchmark (bench/learn.bench.ts) and the tests
 * (golden proposals, the DuckDB equivalence test). Deterministic: the same n gives the same bytes.
 *
 * - kern.log (rsyslog form, with the boot time): four hosts, both directions, both address
 *   families, SMTP out to many addresses, a udp/1434 burst, foreign and malformed lines;
 * - VPC Flow Logs in the default (version 2) format with its header line, as Flow Logs delivers
 *   files to S3: eight interfaces — web servers answering HTTPS/HTTP from many clients (IPv4 and
 *   IPv6), SMTP in and out, SSH from an admin network, DNS to the VPC resolver, RDP probes the
 *   network wall rejects, HTTPS out to a few APIs, NODATA records — each connection as its request
 *   and reply record.
 */
import * as fs from 'fs';

const HOSTS = ['web1', 'web2', 'mail1', 'ns1'];

/** Line `i` (0-based) of the synthetic kern.log. */
export function kernLogLine(i: number): string {
  const host = HOSTS[i % HOSTS.length];
  const t = `Nov 19 ${String(10 + Math.floor(i / 360000) % 14).padStart(2, '0')}:${String(Math.floor(i / 6000) % 60).padStart(2, '0')}:${String(Math.floor(i / 100) % 60).padStart(2, '0')}`;
  const head = `${t} ${host} kernel: [${(1000 + i / 1000).toFixed(6).padStart(12)}] `;
  const k = i % 20;
  if (k === 19) return `${t} ${host} systemd[1]: Started Session ${i} of user admin.`;
  else if (i % 100003 === 0) return `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.`;
  else if (k < 8) {
    const v6 = k === 7;
    const src = v6 ? `2001:0db8:${((i >> 8) & 0xff).toString(16).padStart(4, '0')}:0000:0000:0000:0000:${(i & 0xff).toString(16).padStart(4, '0')}` : `198.51.${(i >> 8) & 255}.${i & 255}`;
    const dst = v6 ? '2001:0db8:0001:0000:0000:0000:0000:0010' : '203.0.113.10';
    return `${head}twinwall ingress audit: IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=${src} DST=${dst} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=TCP SPT=${1024 + (i % 60000)} DPT=${[80, 443, 25, 22][k % 4]} WINDOW=64240 RES=0x00 SYN URGP=0 `;
  } else if (k < 14) {
    return `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=192.0.2.${[53, 54][k % 2]} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=UDP SPT=${1024 + (i % 60000)} DPT=53 LEN=40 UID=${k % 3 === 0 ? 101 : 0} GID=0 `;
  } else if (k < 17) {
    return `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=192.0.${(i >> 8) & 255}.${i & 255} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} DF PROTO=TCP SPT=${1024 + (i % 60000)} DPT=25 WINDOW=64240 RES=0x00 SYN URGP=0 UID=105 GID=110 `;
  } else {
    return `${head}twinwall egress audit: IN= OUT=eth0 SRC=203.0.113.10 DST=${(i * 2654435761) % 223 + 1}.${(i >> 3) & 255}.${(i >> 11) & 255}.${i & 255} LEN=404 TOS=0x00 PREC=0x00 TTL=64 ID=${i & 0xffff} PROTO=UDP SPT=${1024 + (i % 60000)} DPT=1434 LEN=384 UID=0 GID=0 `;
  }
}

export const FLOW_LOG_HEADER = 'version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status';

const INTERFACES = Array.from({ length: 8 }, (_, i) => ({ eni: `eni-0a1b2c3d4e5f6000${i}`, v4: `10.20.${i + 1}.10`, v6: `2001:db8:20:${i + 1}::10` }));

/** Line `i` (0-based) of the synthetic log: a record, or (rarely) a NODATA line. */
export function flowLogLine(i: number): string {
  const host = INTERFACES[i % INTERFACES.length];
  const t = 1732053600 + Math.floor(i / 50);
  const head = `2 123456789010 ${host.eni}`;
  const k = Math.floor(i / INTERFACES.length) % 40;
  const client = 32768 + ((i * 7919) % 28000);
  if (k === 39) return `${head} - - - - - - - ${t} ${t + 60} - NODATA`;
  let src: string;
  let dst: string;
  let sport: number;
  let dport: number;
  let proto = 6;
  let action = 'ACCEPT';
  const reply = (i >> 3) % 2 === 1;
  if (k < 20) {
    // HTTPS/HTTP in from many clients; some over IPv6.
    const v6 = k % 5 === 0;
    const remote = v6 ? `2001:db8:ff:${(i >> 10) & 0xff}::${(i & 0x3ff).toString(16)}` : `198.51.${(i >> 8) & 255}.${i & 255}`;
    const local = v6 ? host.v6 : host.v4;
    const port = k % 4 === 0 ? 80 : 443;
    [src, dst, sport, dport] = reply ? [local, remote, port, client] : [remote, local, client, port];
  } else if (k < 26) {
    // DNS to the VPC resolver.
    proto = 17;
    const resolver = `10.20.0.2`;
    [src, dst, sport, dport] = reply ? [resolver, host.v4, 53, client] : [host.v4, resolver, client, 53];
  } else if (k < 30) {
    // SMTP in and out.
    const remote = `192.0.2.${(i >> 4) & 255}`;
    [src, dst, sport, dport] = k < 28 ? [remote, host.v4, client, 25] : [host.v4, remote, client, 25];
  } else if (k < 33) {
    // SSH from the admin network.
    const admin = `203.0.113.${(i >> 5) & 15}`;
    [src, dst, sport, dport] = reply ? [host.v4, admin, 22, client] : [admin, host.v4, client, 22];
  } else if (k < 36) {
    // RDP probes, rejected by the security group.
    action = 'REJECT';
    [src, dst, sport, dport] = [`203.0.113.${100 + ((i >> 3) & 63)}`, host.v4, client, 3389];
  } else {
    // HTTPS out to a few APIs.
    const api = `198.51.100.${200 + (i % 4)}`;
    [src, dst, sport, dport] = reply ? [api, host.v4, 443, client] : [host.v4, api, client, 443];
  }
  const packets = 1 + (i % 17);
  return `${head} ${src} ${dst} ${sport} ${dport} ${proto} ${packets} ${packets * 83} ${t} ${t + 60} ${action} OK`;
}

/** Write `n` lines made by `line(i)` to `file` (after `header`, when given). */
export function writeLog(file: string, n: number, line: (i: number) => string, header?: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    if (header !== undefined) fs.writeSync(fd, `${header}\n`);
    let batch: string[] = [];
    for (let i = 0; i < n; i++) {
      batch.push(line(i));
      if (batch.length === 10000) {
        fs.writeSync(fd, `${batch.join('\n')}\n`);
        batch = [];
      }
    }
    if (batch.length > 0) fs.writeSync(fd, `${batch.join('\n')}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** `n` lines of kern.log. */
export function writeKernLog(file: string, n: number): void {
  writeLog(file, n, kernLogLine);
}

/** The header line and `n` flow-log records. */
export function writeFlowLogs(file: string, n: number): void {
  writeLog(file, n, flowLogLine, FLOW_LOG_HEADER);
}
