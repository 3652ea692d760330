/**
 * mermaid's own parser over the diagrams twinwall writes (GitHub runs the same parser before it
 * draws a ```mermaid block; a diagram it refuses shows as an error box in the pull request).
 * mermaid is an ES module that needs a DOM, so it runs in a child node process
 * (`mermaid-parse.mjs`, with jsdom), all diagrams of one call in one process.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

export type MermaidResult = { readonly ok: true; readonly type: string } | { readonly ok: false; readonly error: string };

const SCRIPT = path.join(__dirname, 'mermaid-parse.mjs');

/** The body of every ```mermaid fenced block in `markdown`, in order. */
export function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

/** Parse each source with mermaid; one result per source, in order. */
export function parseMermaid(sources: readonly string[]): MermaidResult[] {
  const r = spawnSync(process.execPath, [SCRIPT], { input: JSON.stringify(sources), encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`mermaid-parse.mjs exited ${r.status ?? r.signal}: ${r.stderr}`);
  const results = JSON.parse(r.stdout) as MermaidResult[];
  if (results.length !== sources.length) throw new Error(`mermaid-parse.mjs answered ${results.length} results for ${sources.length} diagrams`);
  return results;
}

/**
 * Every mermaid diagram in `markdown` parses, as a flowchart; returns how many there were, so a
 * caller can also assert the diagrams are there at all.
 */
export function expectMermaidParses(markdown: string): number {
  const blocks = mermaidBlocks(markdown);
  const results = parseMermaid(blocks);
  expect(results.map((r, i) => (r.ok ? r.type : `diagram ${i + 1} refused: ${r.error}\n${blocks[i]}`))).toEqual(blocks.map(() => 'flowchart-v2'));
  return blocks.length;
}
