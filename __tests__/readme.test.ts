/**
 * The README's generated tables match the code, and its first two commands are the ones a
 * newcomer runs on a fresh machine.
 */
import * as fs from 'fs';
import { README, regenerate } from '../scripts/docs';

const readme = fs.readFileSync(README, 'utf8');

describe('README', () => {
  it('has up-to-date role and service tables (run `npm run docs` to refresh)', () => {
    expect(readme).toBe(regenerate(readme));
  });

  it('starts with the install-and-synth command and the test command, in that order', () => {
    const blocks = [...readme.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1].trim());
    expect(blocks.slice(0, 2)).toEqual(['npm ci && npm run synth', 'npm test']);
  });

  it('lists every role the table generator knows', () => {
    for (const role of ['webServer', 'mailServer', 'dnsServer', 'sshAdmin', 'dnsClient', 'ntpClient', 'customRole']) {
      expect(readme).toContain(`\`${role}(`);
    }
  });
});
