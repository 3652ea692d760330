/**
 * `twinwall diff BASE_DIR HEAD_DIR [--format markdown|json] [--fail-on widened-egress|any-change]`:
 * per host, the flows each wall admits that were added or removed, changed reasons, settings
 * (audit mode, instance metadata) and lint findings, between two synth outputs. Egress widening
 * is flagged high risk.
 *
 * Exit code: 1 when --fail-on matches (widened egress on an existing host; any change at all),
 * else 0; 2 on bad usage or unreadable input.
 */
import { Command, Option } from 'commander';
import { loadStacks } from '../artefacts';
import { diffJson, diffMarkdown, diffStacks } from '../../lib/report';
import { CommandIo, EXIT_CODES, defaultIo } from './io';

export type DiffFailOn = 'widened-egress' | 'any-change' | 'never';

export function registerDiff(program: Command, io: CommandIo = defaultIo(program)): Command {
  return program
    .command('diff')
    .description('What changed between two synth outputs, host by host and wall by wall: flows added and removed (computed from what each wall admits), reasons changed, audit mode and instance-metadata access, lint findings; hosts added and removed. Egress widening is high risk.')
    .argument('<base>', 'synth output of the base (e.g. the target branch)')
    .argument('<head>', 'synth output of the head (the pull request)')
    .addOption(new Option('--format <format>', 'output format').choices(['markdown', 'json']).default('markdown'))
    .addOption(new Option('--fail-on <what>', 'exit 1 when egress widened on an existing host, or on any change').choices(['widened-egress', 'any-change', 'never']).default('never'))
    .action((base: string, head: string, opts: { format: 'markdown' | 'json'; failOn: DiffFailOn }) => {
      const diff = diffStacks(loadStacks(base), loadStacks(head));
      io.out(opts.format === 'json' ? diffJson(diff) : diffMarkdown(diff));
      const failed = (opts.failOn === 'widened-egress' && diff.summary.widenedEgress) || (opts.failOn === 'any-change' && diff.summary.anyChange);
      if (failed) {
        const what = opts.failOn === 'widened-egress' ? 'egress widened' : 'the walls changed';
        const lines = diff.hosts.flatMap((h) => [
          ...h.settings.filter((s) => opts.failOn === 'any-change' || s.risk === 'high').map((s) => `${h.stack}/${h.name}: ${s.text}`),
          ...h.flows.filter((f) => opts.failOn === 'any-change' || (f.change === 'added' && f.direction === 'egress')).map((f) => `${h.stack}/${h.name}: ${f.change} ${f.flow}`),
          ...(opts.failOn === 'any-change' && (h.status === 'added' || h.status === 'removed') ? [`${h.stack}/${h.name}: host ${h.status}`] : []),
        ]);
        io.err(`twinwall diff: ${what} (--fail-on ${opts.failOn}):\n${lines.map((l) => `  ${l}\n`).join('')}`);
      }
      io.setExit(failed ? EXIT_CODES.finding : EXIT_CODES.ok);
    });
}
