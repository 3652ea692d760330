/**
 * The CLI's exit codes (cli/exit.ts) in process: an error that is neither bad usage nor invalid
 * input is a bug — exit 3 and one line asking for a report, the stack trace only with
 * TWINWALL_DEBUG=1; invalid input found by the core (a TwinwallError) is exit 2, one line.
 */
import { main } from '../cli/main';
import { EXIT, bugsUrl, internalErrorText } from '../cli/exit';
import { TwinwallError } from '../lib/errors';

function capture(failOut?: Error): { io: { out: (s: string) => void; err: (s: string) => void }; err: () => string } {
  let err = '';
  return {
    io: {
      out: () => {
        if (failOut !== undefined) throw failOut;
      },
      err: (s) => (err += s),
    },
    err: () => err,
  };
}

describe('twinwall exit codes', () => {
  const debug = process.env.TWINWALL_DEBUG;
  afterEach(() => {
    if (debug === undefined) delete process.env.TWINWALL_DEBUG;
    else process.env.TWINWALL_DEBUG = debug;
  });

  it('an internal error (writing the output fails) exits 3 with one line that says it is a bug to report', async () => {
    delete process.env.TWINWALL_DEBUG;
    const c = capture(new Error('write EPIPE'));
    const code = await main(['--help'], c.io);
    expect(code).toBe(EXIT.internal);
    expect(c.err().trimEnd().split('\n')).toHaveLength(1);
    expect(c.err()).toMatch(/^twinwall: internal error: write EPIPE — this is a bug in twinwall; please report it at https:\/\/\S+ with the command you ran \(TWINWALL_DEBUG=1 shows the stack trace\)\n$/);
  });

  it('TWINWALL_DEBUG=1 adds the stack trace', async () => {
    process.env.TWINWALL_DEBUG = '1';
    const c = capture(new Error('write EPIPE'));
    expect(await main(['--help'], c.io)).toBe(EXIT.internal);
    expect(c.err().split('\n').length).toBeGreaterThan(3);
    expect(c.err()).toMatch(/\n\s+at /);
  });

  it('the report address is package.json\'s bugs.url', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(bugsUrl()).toBe((require('../package.json') as { bugs: { url: string } }).bugs.url);
    expect(internalErrorText(new Error('first\nsecond'), {})).not.toContain('second');
  });

  it('a TwinwallError (invalid input, found by the core) that reaches the top is bad usage: exit 2, one line', async () => {
    const c = capture(new TwinwallError('CIDR_NO_MASK', { value: '10.0.0.5', problem: '"10.0.0.5" has no prefix\nlength.', fix: 'write 10.0.0.5/32.' }));
    expect(await main(['--help'], c.io)).toBe(EXIT.usage);
    expect(c.err()).toBe('twinwall: TW101 CIDR_NO_MASK: "10.0.0.5" has no prefix length. Fix: write 10.0.0.5/32.\n');
  });
});
