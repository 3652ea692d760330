#!/usr/bin/env node
/*
 * The `twinwall` command run from the TypeScript sources, for this repository only (`npm run
 * twinwall -- …` and the tests that spawn the CLI): the published bin (bin/twinwall.js) runs the
 * compiled dist/ instead and needs no TypeScript. scripts/ts-loader.js transpiles each .ts file
 * once and caches the result, so a warm start loads no compiler at all.
 */
'use strict';
require('./ts-loader');
require('../cli/main').run(process.argv.slice(2));
