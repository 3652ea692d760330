#!/usr/bin/env node
/*
 * The `twinwall` command. Runs the compiled CLI in dist/ (`npm run build`); no TypeScript at run
 * time. Exit codes are defined in cli/exit.ts (0 ok, 1 finding, 2 usage, 3 internal error).
 * In this repository, `npm run twinwall -- …` runs the sources instead (scripts/twinwall-dev.js).
 */
'use strict';
const fs = require('fs');
const path = require('path');

const INTERNAL = 3; // cli/exit.ts EXIT.internal; this file cannot import it before dist is loaded
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');

if (!fs.existsSync(main)) {
  process.stderr.write('twinwall: the compiled CLI (dist/cli/main.js) is missing: run `npm run build` in this checkout, or `npm run twinwall -- …` to run the sources\n');
  process.exitCode = INTERNAL;
} else {
  let cli;
  try {
    cli = require(main);
  } catch (e) {
    // A broken installation (a file missing from dist/): nothing the CLI's own handler can catch.
    process.stderr.write(`twinwall: internal error: cannot load the CLI (${String((e && e.message) || e).split('\n')[0]}); reinstall twinwall\n`);
    if (process.env.TWINWALL_DEBUG === '1' && e && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = INTERNAL;
  }
  if (cli !== undefined) cli.run(process.argv.slice(2));
}
