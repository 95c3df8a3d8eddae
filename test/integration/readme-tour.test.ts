/**
 * Issue 14 item 3: the README's tour, run literally on a fresh copy of the checkout. Every shell
 * and JavaScript block of the "A one-minute tour" section is executed as printed, in a new shell
 * without any TIDINGS_* variable; the only change is the port: the node is started with
 * `TIDINGS_HTTP_PORT=<free port>` in front, as the tour says, and 8009 in the commands becomes it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { readmeBlocks, ROOT } from '../helpers/readme.js';
import { waitFor } from '../helpers/wait.js';

const blocks = readmeBlocks('A one-minute tour');

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TIDINGS_') && !k.startsWith('npm_')) env[k] = v;
  return env;
}

/** What a fresh clone holds: the checkout's files (tracked and new, not ignored), with its node_modules. */
function freshClone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-clone-'));
  let files: string[];
  try {
    files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  } catch {
    files = [];
  }
  if (files.length > 0) {
    for (const f of files) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      try {
        cpSync(join(ROOT, f), join(dir, f));
      } catch {
        // Listed by git but deleted in the work tree.
      }
    }
  } else {
    cpSync(ROOT, dir, { recursive: true, filter: (src) => !/\/(node_modules|dist|\.git)(\/|$)/.test(src.slice(ROOT.length - 1)) });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** A long-running command of the tour in its own process group, with its output collected. */
class Shell {
  readonly child: ChildProcess;
  out = '';
  err = '';
  constructor(script: string, cwd: string) {
    this.child = spawn('sh', ['-c', script], { cwd, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c) => (this.out += c));
    this.child.stderr!.on('data', (c) => (this.err += c));
  }
  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  /** SIGTERM to the group this test started (sh, npm and node), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, 10_000);
    await gone;
    clearTimeout(t);
  }
}

/** One block run to completion in a new shell, stopping at the first failing command. */
function runBlock(script: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-ec', script], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the README tour, literally', () => {
  let clone: string;
  let port: number;
  let server: Shell | undefined;
  let listener: Shell | undefined;
  const sub = (text: string) => text.replaceAll('127.0.0.1:8009', `127.0.0.1:${port}`);
  const sh = blocks.filter((b) => b.lang === 'sh');
  const js = blocks.filter((b) => b.lang === 'js');

  before(async () => {
    clone = freshClone();
    port = await freePort();
  });
  after(async () => {
    await listener?.stop();
    await server?.stop();
    if (clone) rmSync(clone, { recursive: true, force: true });
  });

  it('has the blocks the steps below run', () => {
    assert.equal(js.length, 1);
    assert.match(sh[0].text, /^TIDINGS_PUSH_TOKEN=\S+ npm start\n$/);
    assert.equal(sh[1].text, 'node listen.mjs\n');
    assert.match(blocks.map((b) => b.text).join(''), /\/health\/live[\s\S]*\/health\/ready[\s\S]*\/metrics/);
  });

  it('starts the node with npm start, as printed', async () => {
    server = new Shell(`TIDINGS_HTTP_PORT=${port} ${sh[0].text}`, clone);
    // npm start builds first: the clone has no dist/ yet.
    await waitFor('the node to listen', () => {
      if (server!.exited) throw new Error(`npm start exited: ${server!.err}`);
      return server!.out.includes(`tidings listening on http://127.0.0.1:${port}`);
    }, 150_000, 100);
  });

  it('the listener logs in, takes the cookie from the login answer and connects', async () => {
    writeFileSync(join(clone, 'listen.mjs'), sub(js[0].text));
    listener = new Shell(sh[1].text, clone);
    await waitFor('the listener to connect', () => {
      if (listener!.exited) throw new Error(`node listen.mjs exited: ${listener!.err}`);
      return listener!.out.includes('connected as user 3 in context 1');
    }, 20_000);
  });

  it('curl publishes with the push token; the listener gets the mail with its sender', async () => {
    const r = await runBlock(sub(sh[2].text), clone);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\{"id":"[^"]+","duplicate":false\}$/);
    const line = await waitFor('the first mail', () => listener!.out.split('\n').find((l) => l.startsWith('new mail ') && l.includes('"id":"1"')));
    const mail = JSON.parse(line.slice('new mail '.length));
    assert.equal(mail.from, 'Jo Example <jo@example.net>');
    for (const f of ['folder', 'subject', 'snippet', 'unread']) assert.ok(f in mail, f);
  });

  it('npx tidings push from a new shell works without a token, over the local admin socket', async () => {
    const r = await runBlock(sub(sh[3].text), clone);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^published \S+\n$/);
    await waitFor('the second mail', () => listener!.out.includes('"id":"2"'));
  });

  it('the operator commands work without a token; config set warns that in-memory values end with the node', async () => {
    const r = await runBlock(sub(sh[4].text), clone);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /asked node \S+; 1 member\(s\)\n {2}\S+ {2}connections=1 {2}websocket=1 {2}last seen /);
    assert.match(r.stdout, new RegExp(`tidings\\.http\\.port = ${port}\\n {2}from server scope \\(env:TIDINGS_HTTP_PORT\\)`));
    assert.match(r.stdout, /set com\.openexchange\.websockets\.enabled = false for user 3@1/);
    assert.match(r.stderr, /warning: this node runs on the in-memory backends: the value lives only until it restarts/);
    assert.match(r.stdout, /com\.openexchange\.websockets\.enabled = false\n {2}from user scope \(store\)/);
    assert.match(r.stdout, /unset com\.openexchange\.websockets\.enabled\n/);
    assert.match(r.stdout, /reloaded; changed: /);
    assert.match(r.stdout, /tidings: configuration in config is valid\n$/);
  });

  it('health and metrics answer as shown', async () => {
    const r = await runBlock(sub(sh[5].text), clone);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\{"status":"live"\}\{"status":"ready"\}tidings_connections\{/);
    // The listener's Socket.IO connection, upgraded from polling.
    assert.match(r.stdout, /^tidings_connections\{transport="websocket"\} 1$/m);
  });
});
