import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface CodeBlock {
  readonly lang: string;
  readonly text: string;
}

/** The fenced code blocks of one `## heading` section of README.md, in order, exactly as printed. */
export function readmeBlocks(heading: string): CodeBlock[] {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${heading}"`);
  const next = readme.indexOf('\n## ', start + 4);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const blocks: CodeBlock[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = fence.exec(section)) !== null; ) blocks.push({ lang: m[1], text: m[2] });
  return blocks;
}
