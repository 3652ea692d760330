/**
 * The review report as a reviewer sees it (issue #12): rendered as a pull-request comment
 * (marked + mermaid) in headless Chromium at 840 px, every diagram is drawn, not an error box,
 * and the diagrams come first, above the first table. A diagram mermaid refuses is caught here
 * (the check can fail). Needs `chromium` (Debian's package); .ci/run installs it.
 */
import { runReviewCli, synthExample, cleanUp } from './support/review';
import { renderInBrowser } from './support/browser-render';
import { mermaidBlocks } from './support/mermaid';
import { describeTier, onPath } from './support/tiers';

describeTier('browser', [onPath('chromium')], () => {
  let markdown: string;
  beforeAll(async () => {
    const r = await runReviewCli(['report', synthExample()]);
    expect(r.code).toBe(0);
    markdown = r.out;
  }, 120_000);
  afterAll(cleanUp);

  it('draws every diagram of the example report at 840 px, the diagrams above the first table', () => {
    const page = renderInBrowser(markdown, 840);
    expect(page.diagrams.map((d) => d.error)).toEqual(mermaidBlocks(markdown).map(() => null));
    expect(page.diagrams.every((d) => d.svg)).toBe(true);
    expect(page.firstTableTop).not.toBeNull();
    for (const d of page.diagrams) expect(d.top).toBeLessThan(page.firstTableTop as number);
    process.stdout.write(`browser: the report is ${page.height} px tall at 840 px; diagrams start at ${page.diagrams.map((d) => `${d.top} px`).join(', ')}; the first table at ${page.firstTableTop} px\n`);
  }, 240_000);

  it('shows a diagram mermaid refuses as refused (the check can fail)', () => {
    const [diagram] = mermaidBlocks(markdown);
    const broken = markdown.replace(diagram, diagram.replace(/-->\|"[^"]*"\|/, '-->|"an edge label left open'));
    expect(broken).not.toBe(markdown);
    const page = renderInBrowser(broken, 840);
    expect(page.diagrams[0].svg).toBe(false);
    expect(page.diagrams[0].error).toMatch(/Parse error/);
    expect(page.diagrams.slice(1).every((d) => d.svg)).toBe(true);
  }, 240_000);
});
