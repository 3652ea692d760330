#!/usr/bin/env node
/*
 * `npm run synth`: `cdktf synth` of the example app, then the per-host summary it wrote. Quiet
 * offline:
 * - CHECKPOINT_DISABLE=1 unless set: cdktf (and Terraform) otherwise call
 *   checkpoint-api.hashicorp.com for version news, which prints an error without a network;
 * - a TF_CLI_CONFIG_FILE that names a file that does not exist is left out of this run: cdktf
 *   runs `terraform version` several times and each prints a warning about the missing file
 *   (Terraform without the variable reads the default location, so nothing else changes).
 * `--output DIR` (or `-o DIR`) synthesizes into DIR instead of cdktf.out.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const at = args.findIndex((a) => a === '--output' || a === '-o');
const outdir = path.resolve(root, at >= 0 && args[at + 1] !== undefined ? args[at + 1] : 'cdktf.out');

const env = { ...process.env };
if (env.CHECKPOINT_DISABLE === undefined) env.CHECKPOINT_DISABLE = '1';
if (env.TF_CLI_CONFIG_FILE !== undefined && !fs.existsSync(env.TF_CLI_CONFIG_FILE)) delete env.TF_CLI_CONFIG_FILE;

const cdktf = path.join(path.dirname(require.resolve('cdktf-cli/package.json', { paths: [root] })), 'bundle', 'bin', 'cdktf');
const r = spawnSync(process.execPath, [cdktf, 'synth', ...args], { cwd: root, env, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
process.stdout.write(fs.readFileSync(path.join(outdir, 'twinwall-summary.txt'), 'utf8'));
