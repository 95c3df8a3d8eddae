/**
 * Pure mapping of the body Dovecot's push_notification `ox` driver PUTs (README, "Mail push from
 * Dovecot") to the `ox:mail:new` event argument.
 */
import { createRequire } from 'node:module';
import libmime from 'libmime';
import libcharset from 'libmime/lib/charset.js';
import { TidingsError } from '../errors.js';

/** A validated notify body. For events other than `messageNew`, missing `folder`/`imap-uid` read as `''`/0. */
export interface NotifyBody {
  readonly user: string;
  readonly event: string;
  readonly folder: string;
  readonly uid: number;
  readonly uidValidity: number;
  readonly from?: string;
  readonly subject?: string;
  readonly snippet?: string;
  readonly unseen?: number;
}

/** The single argument of `ox:mail:new`. */
export interface MailEvent {
  folder: string;
  id: string;
  uidValidity: number;
  from: string | null;
  subject: string | null;
  snippet: string;
  unread: number | null;
}

const UINT32_MAX = 0xffff_ffff;

function invalid(field: string, expected: string): never {
  throw new TidingsError('TIDINGS_VALIDATION', `'${field}' must be ${expected}`, { field });
}

function optString(o: Record<string, unknown>, field: string): string | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') invalid(field, 'a string');
  return v;
}

function optInteger(o: Record<string, unknown>, field: string, max: number, expected: string): number | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) invalid(field, expected);
  return v;
}

/** Validates a parsed JSON body; throws `TIDINGS_VALIDATION` naming the first bad field. */
export function parseNotifyBody(body: unknown): NotifyBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) invalid('body', 'a JSON object');
  const o = body as Record<string, unknown>;

  const user = o.user;
  if (typeof user !== 'string' || user === '') invalid('user', 'a non-empty string');
  const event = o.event;
  if (typeof event !== 'string') invalid('event', 'a string');

  const isNew = event === 'messageNew';
  const uint32 = 'an integer between 0 and 4294967295';
  const folder = optString(o, 'folder');
  if (isNew && folder === undefined) invalid('folder', 'a string');
  const uid = optInteger(o, 'imap-uid', UINT32_MAX, uint32);
  if (isNew && uid === undefined) invalid('imap-uid', uint32);
  const uidValidity = optInteger(o, 'imap-uidvalidity', UINT32_MAX, uint32);
  const from = optString(o, 'from');
  const subject = optString(o, 'subject');
  const snippet = optString(o, 'snippet');
  const unseen = optInteger(o, 'unseen', Number.MAX_SAFE_INTEGER, 'a non-negative integer');

  return {
    user,
    event,
    folder: folder ?? '',
    uid: uid ?? 0,
    uidValidity: uidValidity ?? 0,
    ...(from !== undefined ? { from } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(snippet !== undefined ? { snippet } : {}),
    ...(unseen !== undefined ? { unseen } : {}),
  };
}

// libmime silently decodes a word in an unknown charset as UTF-8. To leave such a word as it was,
// ask iconv-lite, which libmime decodes with, whether it knows the (libmime-normalised) charset.
// Declared in package.json at the version libmime 5 depends on, so npm installs one copy for both.
const iconv = createRequire(import.meta.url)('iconv-lite') as {
  encodingExists(name: string): boolean;
};

/** The same shape libmime's decodeWords matches, so both agree on what is an encoded-word. */
const ENCODED_WORD = /=\?([\w_\-*]+)\?([QqBb])\?([^?]*)\?=/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodable(charset: string, encoding: string, text: string): boolean {
  const name = charset.split('*')[0]; // RFC 2231 language suffix
  if (!name) return false;
  if (encoding.toUpperCase() === 'B' && !BASE64.test(text)) return false;
  const normalized = libcharset.normalizeCharset(name);
  return /^(us-)?ascii|utf-8|7bit$/i.test(normalized) || iconv.encodingExists(normalized);
}

/**
 * Unfolds a raw header value (Dovecot keeps folding as `"\n "`) and decodes RFC 2047
 * encoded-words. Whitespace between adjacent decodable words is dropped; a word in an unknown
 * charset or with broken base64 stays as it was, and so does the whitespace around it.
 */
export function decodeHeader(raw: string): string {
  const s = raw.replace(/\r?\n[ \t]*/g, ' ').replace(/\r/g, '');
  let out = '';
  let pos = 0;
  let runStart = -1; // start of the pending run of adjacent decodable words
  let runEnd = -1;
  const flush = (): void => {
    if (runStart < 0) return;
    const words = s.slice(runStart, runEnd);
    let decoded: string;
    try {
      decoded = libmime.decodeWords(words);
    } catch {
      decoded = words;
    }
    out += decoded;
    runStart = -1;
  };
  for (const m of s.matchAll(ENCODED_WORD)) {
    const at = m.index ?? 0;
    const between = s.slice(pos, at);
    const ok = decodable(m[1], m[2], m[3]);
    if (ok && runStart >= 0 && /^[ \t]*$/.test(between)) {
      runEnd = at + m[0].length;
    } else {
      flush();
      out += between;
      if (ok) {
        runStart = at;
        runEnd = at + m[0].length;
      } else {
        out += m[0];
      }
    }
    pos = at + m[0].length;
  }
  flush();
  return out + s.slice(pos);
}

/** Maps a validated body to the `ox:mail:new` argument. */
export function toMailEvent(b: NotifyBody): MailEvent {
  return {
    folder: b.folder,
    id: String(b.uid),
    uidValidity: b.uidValidity,
    from: b.from === undefined ? null : decodeHeader(b.from),
    subject: b.subject === undefined ? null : decodeHeader(b.subject),
    snippet: b.snippet ?? '',
    unread: b.unseen ?? null,
  };
}

/** Dedupe key: Dovecot retries after timeouts, and (user, uidvalidity, uid) names one message. */
export function idempotencyKey(userKey: string, b: NotifyBody): string {
  return `mail:${userKey}:${b.uidValidity}:${b.uid}`;
}
