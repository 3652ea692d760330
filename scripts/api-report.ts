/**
 * The API reports of the two package entries, made by api-extractor from the declarations the
 * build would ship: `api/twinwall.api.md` (`twinwall`, index.ts) and `api/twinwall-core.api.md`
 * (`twinwall/core`, lib/index.ts). A report lists every exported name with its type, so a pull
 * request that changes the public API shows it as a diff of these files.
 *
 *   npm run api              build, then regenerate both reports (read what changed)
 *   __tests__/package.test.ts  fails when a report differs from what the build declares
 */
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Extractor, ExtractorConfig, ExtractorLogLevel, ExtractorMessage } from '@microsoft/api-extractor';

const ROOT = join(__dirname, '..');

/** Each entry of package.json `exports`, with its declaration file and report. */
export const API_ENTRIES = [
  { entry: 'twinwall', declarations: 'index.d.ts', report: 'twinwall' },
  { entry: 'twinwall/core', declarations: 'lib/index.d.ts', report: 'twinwall-core' },
] as const;

export interface ApiReportResult {
  readonly entry: string;
  /** The committed report, relative to the repository. */
  readonly file: string;
  /** The report made from the sources now. */
  readonly actual: string;
  /** The committed report ('' when there is none). */
  readonly expected: string;
  /** Problems api-extractor reported (errors and warnings), one line each. */
  readonly messages: readonly string[];
}

/**
 * Make both reports from the declarations of a build (`dist/`, what the package ships). With
 * `write` they replace the committed ones; without, the committed ones are left alone and
 * returned next to the new ones for comparison.
 */
export function apiReports(options: { write?: boolean; dist?: string } = {}): ApiReportResult[] {
  const dts = options.dist ?? join(ROOT, 'dist');
  const temp = mkdtempSync(join(tmpdir(), 'twinwall-api-'));
  try {
    return API_ENTRIES.map(({ entry, declarations, report }) => {
      const file = `api/${report}.api.md`;
      const committed = join(ROOT, file);
      const expected = existsSync(committed) ? readFileSync(committed, 'utf8') : '';
      const config = ExtractorConfig.prepare({
        configObjectFullPath: join(ROOT, 'api', `${report}.api-extractor.json`),
        packageJsonFullPath: join(ROOT, 'package.json'),
        configObject: {
          projectFolder: ROOT,
          mainEntryPointFilePath: join(dts, declarations),
          bundledPackages: [],
          newlineKind: 'lf',
          compiler: {
            overrideTsconfig: {
              compilerOptions: { lib: ['es2020'], types: ['node'], strict: true, skipLibCheck: true, module: 'commonjs', moduleResolution: 'node', target: 'es2020' },
              files: [join(dts, declarations)],
            },
          },
          apiReport: { enabled: true, reportFileName: report, reportFolder: join(ROOT, 'api'), reportTempFolder: join(temp, 'report') },
          docModel: { enabled: false },
          dtsRollup: { enabled: false },
          tsdocMetadata: { enabled: false },
          messages: {
            compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
            extractorMessageReporting: {
              default: { logLevel: ExtractorLogLevel.Warning },
              // No release tags: what an entry exports is public, everything else is not exported.
              'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
              'ae-undocumented': { logLevel: ExtractorLogLevel.None },
              'ae-forgotten-export': { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: true },
            },
            tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
          },
        },
      });
      const messages: string[] = [];
      Extractor.invoke(config, {
        localBuild: options.write === true,
        messageCallback: (m: ExtractorMessage) => {
          if (m.logLevel === ExtractorLogLevel.Error || m.logLevel === ExtractorLogLevel.Warning) {
            // console-*: where the report went and whether it changed, which the caller compares itself.
            if (!String(m.messageId).startsWith('console-')) messages.push(`${m.messageId}: ${m.text}`);
          }
          m.handled = true;
        },
      });
      const actual = readFileSync(join(temp, 'report', `${report}.api.md`), 'utf8');
      return { entry, file, actual, expected, messages };
    });
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  if (!existsSync(join(ROOT, 'dist', 'index.d.ts'))) throw new Error('no dist/index.d.ts: run `npm run build` first (npm run api does)');
  for (const r of apiReports({ write: true })) {
    const state = r.actual === r.expected ? 'unchanged' : r.expected === '' ? 'created' : 'CHANGED (read the diff before committing it)';
    process.stdout.write(`${r.file} (${r.entry}): ${state}\n`);
    for (const m of r.messages) process.stdout.write(`  ${m}\n`);
  }
  spawnSync('git', ['status', '--short', 'api'], { cwd: ROOT, stdio: 'inherit' });
}
