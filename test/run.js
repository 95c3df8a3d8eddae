#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner.
// Node 20 takes no globs, so the files are listed here. `node test/run.js unit` runs one folder.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const src = new URL('../test/', import.meta.url).pathname;
const only = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    // Only tests that still have a source: a test deleted from test/ may linger in an old dist/.
    else if (name.endsWith('.test.js') && existsSync(join(src, relative(root, p)).replace(/\.js$/, '.ts'))) files.push(p);
  }
})(root);
const chosen = only.length ? files.filter((f) => only.some((o) => relative(root, f).startsWith(o))) : files;
if (chosen.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const concurrency = process.env.TIDINGS_TEST_CONCURRENCY ?? '3';
const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...chosen], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
