import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
export const BIN = fileURLToPath(new URL('../../../bin/tidings.js', import.meta.url));

export interface ProcessNode {
  child: ChildProcess;
  url: string;
  /** Every log line so far, parsed. */
  lines: any[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** `tidings serve` as its own process; resolves once it logged the port it bound. */
export function startProcessNode(configDir: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<ProcessNode> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configDir], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: any[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let j: any;
        try {
          j = JSON.parse(line);
        } catch {
          continue;
        }
        lines.push(j);
        if (typeof j.msg === 'string' && j.msg.startsWith('tidings listening on ')) {
          clearTimeout(timer);
          resolve({ child, url: j.msg.slice('tidings listening on '.length), lines, exited, kill: (s = 'SIGTERM') => child.kill(s) });
        }
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
}

/** Runs a command to completion; resolves with its exit code and output. */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { env: { PATH: process.env.PATH, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
