import { LineSocket } from './line-socket.js';

/** An LMTP reply that was not the one expected; `message` holds the whole reply text. */
export class LmtpReplyError extends Error {
  constructor(readonly step: string, readonly code: number, readonly lines: string[]) {
    super(`LMTP ${step}: ${lines.join(' / ')}`);
    this.name = 'LmtpReplyError';
  }
}

export interface LmtpDelivery {
  from: string;
  /** One recipient, or several in one transaction (LMTP then answers once per recipient). */
  to: string | string[];
  /** A complete message. Line endings become CRLF; a Buffer is sent byte for byte (e.g. raw Latin-1). */
  rawMessage: string | Buffer;
}

async function readReply(sock: LineSocket): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  for (;;) {
    const line = await sock.readLine();
    lines.push(line);
    const m = /^(\d{3})([ -]|$)/.exec(line);
    if (!m) throw new Error(`LMTP: malformed reply line ${JSON.stringify(line)}`);
    if (m[2] !== '-') return { code: Number(m[1]), lines };
  }
}

async function expect(sock: LineSocket, step: string, want: number): Promise<void> {
  const r = await readReply(sock);
  if (r.code !== want) throw new LmtpReplyError(step, r.code, r.lines);
}

/** CRLF line endings, dot-stuffing, and the terminating `.` line (RFC 5321 §4.5.2). */
export function dataBlock(raw: string | Buffer): Buffer {
  const buf = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
    lines.push(buf.subarray(start, nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl));
    start = nl + 1;
  }
  if (start < buf.length) lines.push(buf.subarray(start));
  const out: Buffer[] = [];
  for (const l of lines) {
    if (l[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(l, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

/**
 * Delivers one message over LMTP: LHLO, MAIL FROM, RCPT TO, DATA. Resolves once every recipient
 * got its 250; rejects with an LmtpReplyError carrying the server's reply otherwise.
 */
export async function lmtpDeliver(port: number, d: LmtpDelivery, host = '127.0.0.1', timeoutMs = 15_000): Promise<void> {
  const rcpts = Array.isArray(d.to) ? d.to : [d.to];
  for (const a of [d.from, ...rcpts]) {
    if (/[\r\n<>]/.test(a)) throw new Error(`LMTP: bad address ${JSON.stringify(a)}`);
  }
  const sock = await LineSocket.open(port, host, timeoutMs);
  try {
    await expect(sock, 'greeting', 220);
    sock.write('LHLO localhost\r\n');
    await expect(sock, 'LHLO', 250);
    sock.write(`MAIL FROM:<${d.from}>\r\n`);
    await expect(sock, 'MAIL FROM', 250);
    for (const to of rcpts) {
      sock.write(`RCPT TO:<${to}>\r\n`);
      await expect(sock, `RCPT TO:<${to}>`, 250);
    }
    sock.write('DATA\r\n');
    await expect(sock, 'DATA', 354);
    sock.write(dataBlock(d.rawMessage));
    for (const to of rcpts) await expect(sock, `delivery to <${to}>`, 250);
    sock.write('QUIT\r\n');
    await readReply(sock).catch(() => undefined);
  } finally {
    sock.close();
  }
}
