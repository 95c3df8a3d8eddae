import { connect, type Socket } from 'node:net';

/** A TCP connection read line by line (CRLF or LF), for the small LMTP and IMAP test clients. */
export class LineSocket {
  private buf = Buffer.alloc(0);
  private lines: string[] = [];
  private waiter: { resolve: (l: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private ended: Error | null = null;

  private constructor(private readonly socket: Socket, private readonly timeoutMs: number) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      for (let nl = this.buf.indexOf(0x0a); nl >= 0; nl = this.buf.indexOf(0x0a)) {
        this.lines.push(this.buf.subarray(0, nl).toString('utf8').replace(/\r$/, ''));
        this.buf = this.buf.subarray(nl + 1);
      }
      this.pump();
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  static open(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<LineSocket> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      const timer = setTimeout(() => s.destroy(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new LineSocket(s, timeoutMs));
      });
    });
  }

  /** The next line without its line ending; rejects on close or after the timeout. */
  readLine(): Promise<string> {
    const next = this.lines.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }

  private pump(): void {
    if (!this.waiter || this.lines.length === 0) return;
    const w = this.waiter;
    this.waiter = null;
    clearTimeout(w.timer);
    w.resolve(this.lines.shift() as string);
  }

  private fail(e: Error): void {
    this.ended ??= e;
    if (!this.waiter) return;
    const w = this.waiter;
    this.waiter = null;
    clearTimeout(w.timer);
    w.reject(this.ended);
  }
}
