#!/usr/bin/env node
/**
 * After `tsc --emitDeclarationOnly`: delete every declaration file in dist/ that the package's
 * public entries cannot reach. The `exports` map names only `twinwall` and `twinwall/core`, so
 * no user can import any other module, and a declaration nothing references only adds weight to
 * the tarball (issue #11's budget). Reachability follows what TypeScript follows in a `.d.ts`:
 * `import`/`export … from "./x"`, `import("./x")` types and `/// <reference path>`; a relative
 * specifier resolves to `x.d.ts` or `x/index.d.ts`. An unresolvable relative specifier is an
 * error (a declaration the entries need would be missing). Says on stderr what it kept and removed
 * (stdout stays clean: `npm pack --json` runs it through prepack).
 */
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

const entries = Object.values(pkg.exports)
  .map((e) => (typeof e === 'object' && e !== null ? e.types : undefined))
  .filter((t) => typeof t === 'string')
  .map((t) => path.join(ROOT, t));
if (entries.length === 0) throw new Error('prune-declarations: package.json exports name no "types"');

const SPECIFIERS = [/\bfrom\s+['"](\.{1,2}\/[^'"]*)['"]/g, /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]*)['"]\s*\)/g, /\bimport\s+['"](\.{1,2}\/[^'"]*)['"]/g];
const REFERENCE = /^\/\/\/\s*<reference\s+path\s*=\s*['"]([^'"]+)['"]/gm;

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec.replace(/\.js$/, ''));
  for (const candidate of [`${base}.d.ts`, path.join(base, 'index.d.ts'), base]) {
    if (candidate.endsWith('.d.ts') && fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`prune-declarations: ${path.relative(ROOT, from)} refers to ${spec}, which has no declaration file`);
}

const reachable = new Set();
const todo = [...entries];
while (todo.length > 0) {
  const file = todo.pop();
  if (reachable.has(file)) continue;
  if (!fs.existsSync(file)) throw new Error(`prune-declarations: entry ${path.relative(ROOT, file)} does not exist (run tsc first)`);
  reachable.add(file);
  const text = fs.readFileSync(file, 'utf8');
  for (const re of SPECIFIERS) for (const m of text.matchAll(re)) todo.push(resolve(file, m[1]));
  for (const m of text.matchAll(REFERENCE)) todo.push(path.resolve(path.dirname(file), m[1]));
}

function declarations(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? declarations(p) : d.name.endsWith('.d.ts') ? [p] : [];
  });
}

let removed = 0;
let bytes = 0;
for (const file of declarations(DIST)) {
  if (reachable.has(file)) continue;
  bytes += fs.statSync(file).size;
  fs.rmSync(file);
  removed++;
}
process.stderr.write(`prune-declarations: kept ${reachable.size} declaration files the entries reach, removed ${removed} (${bytes} bytes)\n`);
