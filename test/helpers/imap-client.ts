import { LineSocket } from './line-socket.js';

/** An IMAP string as a quoted string; CR, LF and NUL cannot be quoted and are refused. */
export function imapQuote(s: string): string {
  if (/[\r\n\0]/.test(s)) throw new Error(`IMAP: cannot quote ${JSON.stringify(s)}`);
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A minimal IMAP4rev1 client: tagged commands, one line each, no literals. Enough for LOGIN and SETMETADATA. */
export class ImapClient {
  private tag = 0;

  private constructor(private readonly sock: LineSocket) {}

  static async connect(port: number, host = '127.0.0.1', timeoutMs = 15_000): Promise<ImapClient> {
    const sock = await LineSocket.open(port, host, timeoutMs);
    const greeting = await sock.readLine().catch((e: unknown) => {
      sock.close();
      throw e;
    });
    if (!/^\* (OK|PREAUTH)\b/i.test(greeting)) {
      sock.close();
      throw new Error(`IMAP greeting: ${greeting}`);
    }
    return new ImapClient(sock);
  }

  /** Sends `command`, collects untagged lines, and resolves on the tagged OK; throws with the server's line on NO/BAD. */
  async command(command: string): Promise<string[]> {
    const tag = `t${++this.tag}`;
    this.sock.write(`${tag} ${command}\r\n`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.sock.readLine();
      if (!line.startsWith(`${tag} `)) {
        untagged.push(line);
        continue;
      }
      if (/^\S+ OK\b/i.test(line)) return untagged;
      const shown = command.replace(/^(LOGIN \S+) .*/i, '$1 ***');
      throw new Error(`IMAP ${shown}: ${line}`);
    }
  }

  login(user: string, password: string): Promise<string[]> {
    return this.command(`LOGIN ${imapQuote(user)} ${imapQuote(password)}`);
  }

  /** LOGOUT, then close; never throws. */
  async logout(): Promise<void> {
    await this.command('LOGOUT').catch(() => undefined);
    this.sock.close();
  }

  close(): void {
    this.sock.close();
  }
}
