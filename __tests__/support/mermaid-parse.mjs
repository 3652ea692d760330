/**
 * Parses mermaid diagrams with mermaid's own parser, the one GitHub's renderer runs before it
 * draws (the review tests use it on every diagram `twinwall report` and `diff` write).
 *
 * stdin: a JSON array of diagram sources. stdout: a JSON array, one entry per source, in order:
 * { "ok": true, "type": "<diagram type>" } or { "ok": false, "error": "<mermaid's message>" }.
 * mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom provides one.
 */
import { JSDOM } from 'jsdom';

const MAX_INPUT = 8 * 1024 * 1024;

const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
if (globalThis.navigator === undefined) globalThis.navigator = dom.window.navigator;

const chunks = [];
let size = 0;
for await (const chunk of process.stdin) {
  size += chunk.length;
  if (size > MAX_INPUT) {
    process.stderr.write(`mermaid-parse: input over ${MAX_INPUT} bytes\n`);
    process.exit(2);
  }
  chunks.push(chunk);
}
const sources = JSON.parse(Buffer.concat(chunks).toString('utf8'));
if (!Array.isArray(sources) || !sources.every((s) => typeof s === 'string')) {
  process.stderr.write('mermaid-parse: stdin must be a JSON array of strings\n');
  process.exit(2);
}

const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
const results = [];
for (const source of sources) {
  try {
    const parsed = await mermaid.parse(source);
    results.push({ ok: true, type: parsed.diagramType });
  } catch (e) {
    results.push({ ok: false, error: String(e?.message ?? e).split('\n').slice(0, 6).join('\n') });
  }
}
process.stdout.write(`${JSON.stringify(results)}\n`);
