/** Code blocks of README.md, for the tests that run or compare them (so the document cannot rot). */
/** The first ```lang block after the heading `## title`. */
export function readmeBlock(text: string, title: string, lang: string): string {
  const at = text.indexOf(`\n## ${title}\n`);
  if (at < 0) throw new Error(`README.md has no section "## ${title}"`);
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(text.slice(at));
  if (block === null) throw new Error(`README.md section "${title}" has no \`\`\`${lang} block`);
  return block[1];
}

