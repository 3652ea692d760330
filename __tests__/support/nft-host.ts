/**
 * A host whose user-data ships the nftables wall, for the checker's tests: the host synthesized
 * through FilteredHost (security groups, host-wall record), its user-data then carrying the
 * policy's nftables file where the checker reads it (write_files NFT_RULES_PATH, and bootcmd's
 * first-boot copy fed to `nft -f -`), and `editNft` to change both copies at once.
 */
import { Testing } from 'cdktf';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { FilteredHost } from '../../constructs';
import { HostArtefact, readStack } from '../../lib/check';
import { HostPolicy } from '../../lib/policy';
import { NFT_HEREDOC, NFT_RULES_PATH, renderNftables } from '../../lib/render';
import { Json } from './artefacts';

/** A #cloud-config document that installs `nft` the way the checker reads it. */
export function nftCloudConfig(nft: string): Json {
  return {
    bootcmd: [`nft -f - <<'${NFT_HEREDOC.rules}'\n${nft}${NFT_HEREDOC.rules}\n`],
    write_files: [{ path: NFT_RULES_PATH, owner: 'root:root', permissions: '0640', content: nft }],
  };
}

export function cloudConfigText(cfg: Json): string {
  return `#cloud-config\n${stringifyYaml(cfg, { lineWidth: 0, version: '1.1' })}`;
}

/** The host of `policy` with the nftables wall as its user-data. */
export function nftHost(policy: HostPolicy, options: { ipsetThreshold?: number } = {}): { host: HostArtefact; nft: string; cfg: Json } {
  const json = JSON.parse(
    Testing.synthScope((scope) => {
      new FilteredHost(scope, 'h', {
        policy,
        vpcId: 'vpc-0123456789abcdef0',
        instance: { ami: 'ami-0123456789abcdef0', instanceType: 't3.micro', subnetId: 'subnet-0123456789abcdef0' },
      });
    }),
  );
  const [host] = readStack('nft', json);
  const nft = renderNftables(policy, options).text;
  const cfg = nftCloudConfig(nft);
  return { host: { ...host, userData: { plain: cloudConfigText(cfg) } }, nft, cfg };
}

/** The host with its nftables file changed in both copies (write_files and bootcmd). */
export function withNft(host: HostArtefact, cfg: Json, change: (nft: string) => string): HostArtefact {
  const copy = parseYaml(stringifyYaml(cfg)) as Json;
  const file = (copy.write_files as Json[]).find((f) => f.path === NFT_RULES_PATH);
  const before = file.content as string;
  const after = change(before);
  if (after === before) throw new Error('the nftables edit changed nothing');
  file.content = after;
  copy.bootcmd[0] = (copy.bootcmd[0] as string).replace(before, after);
  return { ...host, userData: { plain: cloudConfigText(copy) } };
}
