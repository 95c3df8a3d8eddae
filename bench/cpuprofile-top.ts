/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as written by `BENCH_CPU_PROF=<dir> npm run bench`)
 * by self time: per group (tidings' own files, each npm package, Node internals, GC, native) and
 * the top functions, as shares of the busy (non-idle) samples.
 *
 *   node dist/bench/cpuprofile-top.js <file.cpuprofile> [more …] [--top 25] [--window <fromUs>-<toUs>]
 *
 * `--window`: only the samples taken in that CLOCK_MONOTONIC µs range (the benchmark writes each
 * measured window's range to `<BENCH_CPU_PROF dir>/windows.txt`), so start-up and connects are left out.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function groupOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[1] ?? url.slice(5)}`;
  const s = /\/dist\/(src\/.+?)\.js$/.exec(url);
  if (s) return `tidings ${s[1].replace(/^src\//, '')}`;
  return url;
}

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const top = Number(opt('--top') ?? 25);
const win = opt('--window')?.split('-').map(Number);
const files = args;
if (files.length === 0) {
  console.error('usage: node dist/bench/cpuprofile-top.js <file.cpuprofile> … [--top N]');
  process.exit(2);
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample: it belongs to sample i.
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0;
    if (win && (t < win[0] || t > win[1])) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  let busy = 0;
  const groups = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const g = groupOf(url, functionName);
    groups.set(g, (groups.get(g) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${g}${url ? `:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
  console.log(`\n${file}: ${(busy / 1e6).toFixed(2)} s busy`);
  console.log('  by group (self time):');
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(us)}  ${g}`);
  console.log('  top functions (self time):');
  for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(us)}  ${f}`);
}
