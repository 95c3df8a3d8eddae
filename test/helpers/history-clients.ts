import type { Login } from './node.js';

/** One long-poll: status, ETag (unquoted) and the events of a 200. */
export interface PollAnswer {
  status: number;
  etag: string | null;
  events: any[];
  body: any;
  headers: Headers;
}

export async function poll(url: string, l: Login, opts: { since?: string; ifNoneMatch?: string; path?: string; connection?: string; origin?: string; cookie?: string | null; signal?: AbortSignal } = {}): Promise<PollAnswer> {
  const q = new URLSearchParams({ session: l.session });
  if (opts.since !== undefined) q.set('since', opts.since);
  if (opts.path !== undefined) q.set('path', opts.path);
  if (opts.connection !== undefined) q.set('connection', opts.connection);
  const headers: Record<string, string> = {};
  const cookie = opts.cookie === undefined ? l.cookie : opts.cookie;
  if (cookie) headers.cookie = cookie;
  if (opts.ifNoneMatch !== undefined) headers['if-none-match'] = opts.ifNoneMatch;
  if (opts.origin) headers.origin = opts.origin;
  const r = await fetch(`${url}/api/push/poll?${q}`, { headers, signal: opts.signal ?? AbortSignal.timeout(120_000) });
  const text = await r.text();
  const body = text ? JSON.parse(text) : null;
  const etag = r.headers.get('etag');
  return { status: r.status, etag: etag === null ? null : etag.replace(/^"|"$/g, ''), events: r.status === 200 && body?.events ? body.events : [], body, headers: r.headers };
}

export interface SseMessage {
  id: string | null;
  data: any;
}

/** An open SSE stream: messages parsed as they come, comment lines counted. */
export interface SseStream {
  status: number;
  headers: Headers;
  /** The raw text so far (for retry: and comment lines). */
  text: () => string;
  messages: SseMessage[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export async function openSse(url: string, l: Login, opts: { lastEventId?: string; since?: string; path?: string; connection?: string; node?: string } = {}): Promise<SseStream> {
  const q = new URLSearchParams({ session: l.session });
  if (opts.since !== undefined) q.set('since', opts.since);
  if (opts.path !== undefined) q.set('path', opts.path);
  if (opts.connection !== undefined) q.set('connection', opts.connection);
  const headers: Record<string, string> = { cookie: l.cookie, accept: 'text/event-stream' };
  if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
  const ac = new AbortController();
  const r = await fetch(`${url}/api/push/events?${q}`, { headers, signal: ac.signal });
  let raw = '';
  let pending = '';
  const messages: SseMessage[] = [];
  const ended = (async () => {
    if (!r.body) return;
    const dec = new TextDecoder();
    try {
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        const t = dec.decode(chunk, { stream: true });
        raw += t;
        pending += t;
        let i;
        while ((i = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, i);
          pending = pending.slice(i + 2);
          let id: string | null = null;
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length) messages.push({ id, data: JSON.parse(data.join('\n')) });
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return { status: r.status, headers: r.headers, text: () => raw, messages, ended, close: () => ac.abort() };
}
