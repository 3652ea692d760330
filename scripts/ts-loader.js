/*
 * Loads TypeScript sources in this repository without a build: requiring this file teaches
 * Node's `require` (in the current thread) to load `.ts` files. Each file is transpiled once
 * (TypeScript's transpileModule, no type-checking: `npm test` runs tsc) and the result kept in
 * node_modules/.cache/twinwall, keyed by the file's path, size and mtime, so a warm start loads
 * no compiler at all. Used by scripts/twinwall-dev.js (the CLI from the sources) and by the
 * check workers when the CLI itself runs from the sources (cli/check-workers.ts): a worker
 * thread has its own module loader, so it requires this file first.
 */
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const Module = require('module');

const root = path.resolve(__dirname, '..');
const cacheDir = path.join(root, 'node_modules', '.cache', 'twinwall');
let ts; // loaded on the first cache miss only
let compilerOptions;

function transpile(file, source) {
  if (ts === undefined) {
    ts = require('typescript');
    const config = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile).config || {};
    compilerOptions = { ...(config.compilerOptions || {}), incremental: false, declaration: false, noEmit: false, inlineSourceMap: true, inlineSources: false };
    compilerOptions = ts.convertCompilerOptionsFromJson(compilerOptions, root).options;
  }
  return ts.transpileModule(source, { fileName: file, compilerOptions }).outputText;
}

Module._extensions['.ts'] = function load(module, file) {
  const stat = fs.statSync(file);
  const key = crypto.createHash('sha1').update(`${file}\0${stat.size}\0${stat.mtimeMs}`).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  let code;
  try {
    code = fs.readFileSync(cached, 'utf8');
  } catch {
    code = transpile(file, fs.readFileSync(file, 'utf8'));
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const tmp = `${cached}.${process.pid}.${require('worker_threads').threadId}`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, cached);
    } catch {
      // A read-only tree only costs speed.
    }
  }
  module._compile(code, file);
};
