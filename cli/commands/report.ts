/**
 * `twinwall report [DIR] [--format markdown|json]`: per stack and host, what the walls admit
 * (with the role and reason behind each flow), the host-only decisions, lint findings and a
 * Mermaid diagram. Markdown fits one pull-request comment; JSON follows docs/report-schema.json.
 *
 * Exit code: 0, unless --fail-on names a lint level that an unsuppressed finding reaches (1).
 */
import { Command, Option } from 'commander';
import { loadStacks } from '../artefacts';
import { buildReport, reportJson, reportMarkdown } from '../../lib/report';
import { EXIT } from '../exit';
import { CommandIo, defaultIo } from './io';

export type ReportFormat = 'markdown' | 'json';
export type ReportFailOn = 'error' | 'warning' | 'never';

export function registerReport(program: Command, io: CommandIo = defaultIo(program)): Command {
  return program
    .command('report')
    .description('Per stack and host: what both walls admit (service, ports, peers, the role and reason behind each), the host-only decisions (metadata, resolver, time sync, DHCP), lint findings and a Mermaid diagram, read from the synthesized artefacts. Markdown fits a pull-request comment.')
    .argument('[dir]', 'cdktf synth output directory (or one stack directory, or a cdk.tf.json)', 'cdktf.out')
    .addOption(new Option('--format <format>', 'output format').choices(['markdown', 'json']).default('markdown'))
    .addOption(new Option('--fail-on <level>', 'exit 1 when an unsuppressed lint finding is at least this level').choices(['error', 'warning', 'never']).default('never'))
    .addHelpText('after', '\nLint ids, levels and fixes: docs/lint.md. JSON schema: docs/report-schema.md.')
    .action((dir: string, opts: { format: ReportFormat; failOn: ReportFailOn }) => {
      const { report } = buildReport(loadStacks(dir));
      io.out(opts.format === 'json' ? reportJson(report) : reportMarkdown(report));
      const s = report.summary;
      const failed = (opts.failOn === 'error' && s.errors > 0) || (opts.failOn === 'warning' && s.errors + s.warnings > 0);
      io.setExit(failed ? EXIT.finding : EXIT.ok);
    });
}
