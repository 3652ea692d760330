/**
 * A host that ships the nftables wall, for the checker's tests: synthesized through FilteredHost
 * with `hostFirewall: 'nftables'` (security groups, host-wall record, user-data with the wall in
 * write_files NFT_RULES_PATH and bootcmd's first-boot copy), and `withNft` to change both copies
 * of the wall at once.
 */
import { Testing } from 'cdktf';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { FilteredHost } from '../../constructs';
import { HostArtefact, decodeUserData, readStack } from '../../lib/check';
import { HostPolicy } from '../../lib/policy';
import { NFT_RULES_PATH } from '../../lib/render';
import { Json } from './artefacts';

export function cloudConfigText(cfg: Json): string {
  return `#cloud-config\n${stringifyYaml(cfg, { lineWidth: 0, version: '1.1' })}`;
}

/** The host of `policy` with the nftables wall in its user-data; `nft` the wall, `cfg` the cloud-config. */
export function nftHost(policy: HostPolicy, options: { ipsetThreshold?: number } = {}): { host: HostArtefact; nft: string; cfg: Json; json: Json } {
  const json = JSON.parse(
    Testing.synthScope((scope) => {
      new FilteredHost(scope, 'h', {
        policy,
        hostFirewall: 'nftables',
        ...options,
        vpcId: 'vpc-0123456789abcdef0',
        instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' },
      });
    }),
  );
  const [host] = readStack('nft', json);
  const cfg = parseYaml(decodeUserData(host.userData as { base64: string }).text, { version: '1.1' }) as Json;
  const nft = (cfg.write_files as Json[]).find((f) => f.path === NFT_RULES_PATH).content as string;
  return { host, nft, cfg, json };
}

/** The host with its nftables wall changed in both copies (write_files and bootcmd). */
export function withNft(host: HostArtefact, cfg: Json, change: (nft: string) => string): HostArtefact {
  const copy = parseYaml(stringifyYaml(cfg)) as Json;
  const file = (copy.write_files as Json[]).find((f) => f.path === NFT_RULES_PATH);
  const before = file.content as string;
  const after = change(before);
  if (after === before) throw new Error('the nftables edit changed nothing');
  file.content = after;
  const boot = copy.bootcmd[0] as string[];
  const i = boot.length - 1;
  if (!boot[i].includes(before)) throw new Error('bootcmd carries no copy of the nftables wall');
  boot[i] = boot[i].replace(before, after);
  return { ...host, userData: { base64: Buffer.from(cloudConfigText(copy), 'utf8').toString('base64') } };
}
