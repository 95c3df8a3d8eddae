/**
 * Syscall counts of running processes over a window, for the benchmark's "where the time goes"
 * mode. Prefers `perf stat` on the syscall tracepoints (in-kernel counters: the process runs at
 * nearly full speed); falls back to `strace -c -f -p` (ptrace: every syscall stops the process,
 * so the process runs slower and batches differently; the counts are still counts). Both only
 * attach to a pid this benchmark started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface SyscallCounts {
  /** write, writev, sendto, sendmsg */
  writes: number;
  /** read, readv, recvfrom, recvmsg */
  reads: number;
  /** epoll_wait, epoll_pwait, epoll_pwait2: event-loop wake-ups (each returns at least one event or a timeout) */
  epollWaits: number;
  /** every syscall */
  total: number;
}

const GROUPS: Record<keyof Omit<SyscallCounts, 'total'>, readonly string[]> = {
  writes: ['write', 'writev', 'sendto', 'sendmsg'],
  reads: ['read', 'readv', 'recvfrom', 'recvmsg'],
  epollWaits: ['epoll_wait', 'epoll_pwait', 'epoll_pwait2'],
};

export type SyscallTool = 'perf' | 'strace' | 'none';

let perfEvents: string[] | null = null;

/** Which tool works on this machine (perf needs the syscall tracepoints and perf_event_paranoid ≤ 1 or root). */
export function syscallTool(): SyscallTool {
  const names = Object.values(GROUPS).flat();
  const candidates = names.map((n) => `syscalls:sys_enter_${n}`);
  const list = spawnSync('perf', ['list', 'tracepoint'], { encoding: 'utf8' });
  if (list.status === 0) {
    const have = candidates.filter((e) => list.stdout.includes(e));
    const events = [...have, 'raw_syscalls:sys_enter'];
    if (have.length > 0 && spawnSync('perf', ['stat', '-x,', '-e', events.join(','), '--', 'true'], { encoding: 'utf8' }).status === 0) {
      perfEvents = events;
      return 'perf';
    }
  }
  if (spawnSync('strace', ['-c', '-o', '/dev/null', 'true']).status === 0) return 'strace';
  return 'none';
}

export interface SyscallProbe {
  stop(): Promise<SyscallCounts>;
}

/** Starts counting the syscalls of `pid` (all its threads) into `<dir>/<name>.syscalls`; resolves once attached. */
export async function countSyscalls(tool: SyscallTool, pid: number, dir: string, name: string): Promise<SyscallProbe> {
  const out = join(dir, `${name}.syscalls`);
  rmSync(out, { force: true });
  if (tool === 'none') throw new Error('no syscall counter (perf or strace) works here');
  const args = tool === 'perf'
    ? ['stat', '-x,', '-o', out, '-e', perfEvents!.join(','), '-p', String(pid)]
    : ['-c', '-f', '-o', out, '-p', String(pid)];
  const child: ChildProcess = spawn(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // perf attaches at once; strace prints nothing until it is attached, so give both a moment.
  await new Promise((r) => setTimeout(r, tool === 'perf' ? 150 : 400));
  if (child.exitCode !== null) throw new Error(`${tool} on pid ${pid} exited: ${err.slice(0, 500)}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      return tool === 'perf' ? parsePerf(readFileSync(out, 'utf8')) : parseStrace(readFileSync(out, 'utf8'));
    },
  };
}

function grouped(byName: Map<string, number>, total: number): SyscallCounts {
  const c: SyscallCounts = { writes: 0, reads: 0, epollWaits: 0, total };
  for (const [g, names] of Object.entries(GROUPS) as [keyof typeof GROUPS, readonly string[]][]) for (const n of names) c[g] += byName.get(n) ?? 0;
  return c;
}

function parsePerf(text: string): SyscallCounts {
  const byName = new Map<string, number>();
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f.length < 3) continue;
    const v = Number(f[0]);
    if (!Number.isFinite(v)) continue;
    if (f[2] === 'raw_syscalls:sys_enter') total = v;
    const m = /^syscalls:sys_enter_(\w+)$/.exec(f[2]);
    if (m) byName.set(m[1], v);
  }
  return grouped(byName, total);
}

function parseStrace(text: string): SyscallCounts {
  const byName = new Map<string, number>();
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length < 5 || !/^\d/.test(f[0])) continue;
    const name = f[f.length - 1];
    const calls = Number(f[3]);
    if (name === 'total') total = calls;
    else byName.set(name, calls);
  }
  return grouped(byName, total);
}
