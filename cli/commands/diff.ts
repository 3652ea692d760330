/**
 * `twinwall diff BASE_DIR HEAD_DIR [--format markdown|json] [--fail-on widened-egress|any-change]`:
 * per host, the flows each wall admits that were added or removed, changed reasons, settings
 * (audit mode, instance metadata) and lint findings, between two synth outputs. Egress widening
 * is flagged high risk.
 *
 * Hosts are matched by stack and Terraform resource address, not by their name tag: a renamed
 * host is compared with its base, and a new host's egress beyond its VPC is widened egress.
 *
 * Exit code: 1 when --fail-on matches (widened egress: on an existing host, or beyond its VPC on
 * a new one; any change at all), else 0; 2 on bad usage or unreadable input.
 */
import { Command, Option } from 'commander';
import { loadStacks } from '../artefacts';
import { diffJson, diffMarkdown, diffStacks } from '../../lib/report';
import { EXIT } from '../exit';
import { CommandIo, defaultIo } from './io';

export type DiffFailOn = 'widened-egress' | 'any-change' | 'never';

export function registerDiff(program: Command, io: CommandIo = defaultIo(program)): Command {
  return program
    .command('diff')
    .description('What changed between two synth outputs, host by host and wall by wall: flows added and removed (computed from what each wall admits), reasons changed, audit mode and instance-metadata access, lint findings; hosts added, removed and renamed (matched by stack and resource address, not by name tag). Egress widening is high risk, and a new host\'s egress beyond its VPC is widening.')
    .argument('<base>', 'synth output of the base (e.g. the target branch)')
    .argument('<head>', 'synth output of the head (the pull request)')
    .addOption(new Option('--format <format>', 'output format').choices(['markdown', 'json']).default('markdown'))
    .addOption(new Option('--fail-on <what>', 'exit 1 when egress widened (on an existing host, or beyond its VPC on a new one), or on any change').choices(['widened-egress', 'any-change', 'never']).default('never'))
    .action((base: string, head: string, opts: { format: 'markdown' | 'json'; failOn: DiffFailOn }) => {
      const diff = diffStacks(loadStacks(base), loadStacks(head));
      io.out(opts.format === 'json' ? diffJson(diff) : diffMarkdown(diff));
      const failed = (opts.failOn === 'widened-egress' && diff.summary.widenedEgress) || (opts.failOn === 'any-change' && diff.summary.anyChange);
      if (failed) {
        const what = opts.failOn === 'widened-egress' ? 'egress widened' : 'the walls changed';
        const lines = diff.hosts.flatMap((h) => {
          const who = `${h.stack}/${h.name}${h.renamedFrom !== undefined ? ` (renamed from ${h.renamedFrom})` : h.status === 'added' ? ' (new host)' : ''}`;
          return [
            ...h.settings.filter((s) => opts.failOn === 'any-change' || s.risk === 'high').map((s) => `${who}: ${s.text}`),
            ...h.flows.filter((f) => opts.failOn === 'any-change' || (f.change === 'added' && f.direction === 'egress')).map((f) => `${who}: ${f.change} ${f.flow}`),
            ...(opts.failOn === 'any-change' && (h.status === 'added' || h.status === 'removed') ? [`${who}: host ${h.status} (${h.address})`] : []),
            ...(opts.failOn === 'any-change' && h.renamedFrom !== undefined ? [`${who}: renamed (${h.address})`] : []),
          ];
        });
        io.err(`twinwall diff: ${what} (--fail-on ${opts.failOn}):\n${lines.map((l) => `  ${l}\n`).join('')}`);
      }
      io.setExit(failed ? EXIT.finding : EXIT.ok);
    });
}
