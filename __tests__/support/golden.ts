/**
 * Golden files. `expectGolden("iptables/mailServer.v4", text)` compares `text` with
 * `__tests__/golden/iptables/mailServer.v4`. Goldens are only ever written by `npm run bless`
 * (which sets TWINWALL_BLESS=1); a missing golden is a failure, not a silent write, and every
 * golden diff is reviewed in the pull request.
 */
import * as fs from 'fs';
import * as path from 'path';

export const GOLDEN_DIR = path.join(__dirname, '..', 'golden');

export function blessing(): boolean {
  return process.env.TWINWALL_BLESS === '1';
}

export function expectGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (blessing()) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) {
    throw new Error(`golden file ${path.relative(process.cwd(), file)} does not exist; run \`npm run bless\` and review the new file.`);
  }
  const expected = fs.readFileSync(file, 'utf8');
  if (expected !== actual) {
    // toEqual gives jest's line diff; the hint says how to accept an intended change.
    expect({ golden: name, text: actual }).toEqual({ golden: name, text: expected });
  }
}
