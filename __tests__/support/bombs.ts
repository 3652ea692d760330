/**
 * Decompression bombs for user-data, for the hostile-input tests and `npm run bench -- hostile`.
 * Built from gzip members of one MiB of zeros each (Node's gunzip reads concatenated members), so
 * a bomb of gigabytes costs a few hundred milliseconds to make.
 */
import * as zlib from 'zlib';

function rulesFileBomb(members: number): string {
  const member = zlib.gzipSync(Buffer.alloc(1 << 20), { level: 9 });
  const inner = Buffer.concat(Array<Buffer>(members).fill(member));
  return `#cloud-config\nwrite_files:\n  - path: /etc/iptables/rules.v4\n    encoding: gz+b64\n    content: ${inner.toString('base64')}\n`;
}

/**
 * user_data_base64 of about 12 KB that expands twice: gzip around a #cloud-config whose rules file
 * is gz+b64 of 3,700 members — 3.9 GB in the end. Before the bound, `check` read it to 7.8 GB.
 */
export function doubleBomb(): string {
  return zlib.gzipSync(Buffer.from(rulesFileBomb(3700)), { level: 9 }).toString('base64');
}

/** user_data_base64 of a plain #cloud-config (under 1 MiB) whose rules file inflates to 600 MiB. */
export function innerBomb(): string {
  return Buffer.from(rulesFileBomb(600)).toString('base64');
}
