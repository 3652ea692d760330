/**
 * Renders Markdown the way a pull-request comment shows it (marked for the Markdown, mermaid for
 * its diagrams) in headless Chromium at a given width, and reports what a reader sees: each
 * diagram drawn or refused, where it starts, where the first table starts, the page's height.
 * The page loads nothing from the network: the two libraries are read from node_modules.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface Rendered {
  /** One entry per ```mermaid block, in order. */
  readonly diagrams: { readonly svg: boolean; readonly error: string | null; readonly top: number }[];
  /** Where the first table starts (px from the top of the page), or null without a table. */
  readonly firstTableTop: number | null;
  /** The whole page's height, px. */
  readonly height: number;
}

const MODULES = path.join(__dirname, '..', '..', 'node_modules');
const RESULT = /<pre id="twinwall-result">([^<]*)<\/pre>/;

function page(markdown: string, width: number): string {
  // The Markdown goes in as JSON inside a script element: "<" escaped, so it cannot end the element.
  const data = JSON.stringify(markdown).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><style>body { margin: 0; width: ${width}px; font: 14px/1.5 sans-serif; } table { border-collapse: collapse; }</style>
<script src="file://${path.join(MODULES, 'marked', 'lib', 'marked.umd.js')}"></script>
<script src="file://${path.join(MODULES, 'mermaid', 'dist', 'mermaid.min.js')}"></script>
</head><body><div id="comment"></div>
<script id="twinwall-markdown" type="application/json">${data}</script>
<script>
(async () => {
  const out = document.createElement('pre');
  out.id = 'twinwall-result';
  try {
    const md = JSON.parse(document.getElementById('twinwall-markdown').textContent);
    const comment = document.getElementById('comment');
    comment.innerHTML = marked.parse(md);
    const blocks = [...comment.querySelectorAll('code.language-mermaid')];
    const holders = blocks.map((code) => {
      const div = document.createElement('div');
      div.className = 'mermaid';
      div.textContent = code.textContent;
      code.parentElement.replaceWith(div);
      return div;
    });
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
    const diagrams = [];
    for (const div of holders) {
      let error = null;
      try { await mermaid.run({ nodes: [div], suppressErrors: false }); } catch (e) { error = String(e && e.message || e); }
      const svg = div.querySelector('svg');
      if (svg !== null && /Syntax error/.test(svg.textContent)) error = error || 'mermaid drew its error diagram';
      diagrams.push({ svg: svg !== null && error === null, error, top: Math.round(div.getBoundingClientRect().top + window.scrollY) });
    }
    const table = comment.querySelector('table');
    out.textContent = JSON.stringify({ diagrams, firstTableTop: table === null ? null : Math.round(table.getBoundingClientRect().top + window.scrollY), height: document.documentElement.scrollHeight });
  } catch (e) {
    out.textContent = JSON.stringify({ failed: String(e && e.stack || e) });
  }
  document.body.appendChild(out);
})();
</script></body></html>
`;
}

/** Render `markdown` at `width` px in headless Chromium (`chromium` on PATH). */
export function renderInBrowser(markdown: string, width = 840): Rendered {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-browser-'));
  try {
    const file = path.join(dir, 'comment.html');
    fs.writeFileSync(file, page(markdown, width));
    const r = spawnSync('chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
      `--user-data-dir=${path.join(dir, 'profile')}`, '--allow-file-access-from-files',
      `--window-size=${width},1200`, '--virtual-time-budget=60000', '--dump-dom', `file://${file}`,
    ], { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 * 1024 * 1024 });
    const m = RESULT.exec(r.stdout ?? '');
    if (m === null) throw new Error(`chromium printed no result (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-2000)}`);
    const text = m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    const result = JSON.parse(text) as Rendered & { failed?: string };
    if (result.failed !== undefined) throw new Error(`the page failed: ${result.failed}`);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
