/**
 * A real Dovecot 2.3 (Debian's dovecot-core, -lmtpd, -imapd) run as its own instance for tests:
 * own config, base_dir and state_dir in a fresh temp dir, LMTP and IMAP on free loopback ports,
 * push_notification `ox` pointed at a URL of the test's choosing.
 * The settings tidings needs are the README's dovecot.conf block, as printed (readmeDovecotBlock).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapClient, imapQuote } from './imap-client.js';
import { lmtpDeliver, type LmtpDelivery } from './lmtp-client.js';
import { freePort } from './ports.js';
import { readmeBlocks } from './readme.js';
import { waitFor } from './wait.js';

export const DOVECOT_BIN = '/usr/sbin/dovecot';
const NOBODY = 65534;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
export const PUSH_METADATA_KEY = '/private/vendor/vendor.dovecot/http-notify';

export interface DovecotOptions {
  /** Where the ox driver PUTs; may hold `user:pass@` (percent-encoded). Every `%` is doubled for the config. */
  pushUrl: string;
  /** Adds `user_from_metadata`: the pushed `user` is then the `user=` value of the METADATA entry. */
  userFromMetadata?: boolean;
  /** More driver options, e.g. `max_retries=1 timeout_msecs=500`. */
  driverOptions?: string;
  /** Logins as Dovecot sees them after `auth_username_format = %Lu`, so write them in lower case. */
  users: { login: string; password: string }[];
}

export interface Dovecot {
  readonly lmtpPort: number;
  readonly imapPort: number;
  /** The instance's temp dir (removed by stop()). */
  readonly dir: string;
  /** IMAP LOGIN, then `SETMETADATA "" (<http-notify key> "<value>")`; `null` removes the entry (NIL). */
  setPushMetadata(login: string, password: string, value: string | null): Promise<void>;
  /** LMTP delivery; resolves after the 250 for every recipient, rejects with the server's reply otherwise. */
  deliver(opts: LmtpDelivery): Promise<void>;
  /** Delivery by `dovecot-lda -d LOGIN` (an MTA's local delivery agent), the message on stdin; rejects with its exit code and output. */
  deliverLda(opts: { from: string; to: string; rawMessage: string }): Promise<void>;
  /** The instance's log (dovecot.log, plus anything the master printed); still available after stop(). */
  log(): Promise<string>;
  /** SIGTERM to the master, wait for it to exit, remove the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

// If the test process exits without stop(), still take our Dovecot masters down (by pid).
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  });
}

let instanceCounter = 0;

function doublePercent(s: string): string {
  return s.replace(/%/g, '%%');
}

/**
 * The README's dovecot.conf block, as printed: the suite's Dovecot runs with exactly what operators
 * are told to write. Only the driver's URL (this test's tidings and credentials) and its options
 * are put in; the instance's own paths, users and listeners come from renderConfig.
 */
export function readmeDovecotBlock(): string {
  const block = readmeBlocks('Mail push from Dovecot').find((b) => b.lang === 'conf');
  if (!block) throw new Error('README.md: the Dovecot section has no ```conf block');
  return block.text;
}

const DRIVER_LINE = /^(\s*push_notification_driver = )ox:url=\S+$/m;

function renderConfig(dir: string, o: DovecotOptions, instance: string, lmtpPort: number, imapPort: number): string {
  const driver = ['ox:url=' + doublePercent(o.pushUrl)];
  if (o.userFromMetadata) driver.push('user_from_metadata');
  if (o.driverOptions?.trim()) driver.push(doublePercent(o.driverOptions.trim()));
  const readme = readmeDovecotBlock();
  if (readme.match(new RegExp(DRIVER_LINE.source, 'gm'))?.length !== 1) throw new Error('README.md: the Dovecot block must have one push_notification_driver = ox:url=… line');
  const tidingsPart = readme.replace(DRIVER_LINE, (_m, lead: string) => `${lead}${driver.join(' ')}`);
  return `# written by test/helpers/dovecot.ts; complete, does not include /etc/dovecot
instance_name = ${instance}
base_dir = ${dir}/run
state_dir = ${dir}/state
protocols = imap lmtp
listen = 127.0.0.1
shutdown_clients = yes

log_path = ${dir}/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
mail_debug = yes

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login

first_valid_uid = 500
mail_location = maildir:~/Maildir
postmaster_address = postmaster@example.com

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u ${dir}/users
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}

# --- from README.md, "Mail push from Dovecot" ---
${tidingsPart}`;
}

function checkOptions(o: DovecotOptions): void {
  const oneLine = /[\r\n]/;
  if (oneLine.test(o.pushUrl) || /\s/.test(o.pushUrl)) throw new Error(`startDovecot: pushUrl must not contain whitespace: ${JSON.stringify(o.pushUrl)}`);
  if (o.driverOptions !== undefined && oneLine.test(o.driverOptions)) throw new Error('startDovecot: driverOptions must be one line');
  if (o.users.length === 0) throw new Error('startDovecot: at least one user is needed');
  for (const u of o.users) {
    if (!u.login || /[:\s]/.test(u.login)) throw new Error(`startDovecot: login must be non-empty without ':' or whitespace: ${JSON.stringify(u.login)}`);
    if (/[:\r\n]/.test(u.password)) throw new Error(`startDovecot: password of ${u.login} must not contain ':' or a newline`);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const DOVECOT_LDA_BIN = '/usr/lib/dovecot/dovecot-lda';

function ldaDeliver(conf: string, d: { from: string; to: string; rawMessage: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(DOVECOT_LDA_BIN, ['-c', conf, '-d', d.to, '-f', d.from], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    c.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
    c.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')));
    c.once('error', reject);
    c.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`dovecot-lda -d ${d.to} exited with ${code}: ${output}`))));
    c.stdin.end(d.rawMessage.replace(/\r?\n/g, '\n'));
  });
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

async function startOnce(o: DovecotOptions): Promise<Dovecot | { clash: true }> {
  const dir = await mkdtemp(join(tmpdir(), 'tidings-dovecot-'));
  // The dovecot and dovenull service users must reach base_dir below it.
  await chmod(dir, 0o755);
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true, maxRetries: 5 });
  let child: ChildProcess | undefined;
  try {
    // Dovecot refuses uid 0 for mail, and cannot create homes below a root-owned dir: nobody, 0700, made here.
    await mkdir(join(dir, 'home'), { mode: 0o755 });
    const entries: string[] = [];
    for (const [i, u] of o.users.entries()) {
      const home = join(dir, 'home', `u${i}`);
      await mkdir(home, { mode: 0o700 });
      await chown(home, NOBODY, NOBODY);
      entries.push(`${u.login}:{PLAIN}${u.password}:${NOBODY}:${NOBODY}::${home}::`);
    }
    await writeFile(join(dir, 'users'), entries.join('\n') + '\n', { mode: 0o644 });

    const lmtpPort = await freePort();
    let imapPort = await freePort();
    while (imapPort === lmtpPort) imapPort = await freePort();
    const instance = `tidings-test-${process.pid}-${++instanceCounter}-${randomBytes(3).toString('hex')}`;
    const conf = join(dir, 'dovecot.conf');
    await writeFile(conf, renderConfig(dir, o, instance, lmtpPort, imapPort), { mode: 0o644 });

    const c = spawn(DOVECOT_BIN, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    track(c);
    let output = '';
    c.stdout?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    c.stderr?.on('data', (d: Buffer) => (output += d.toString('utf8')));
    let spawnError: Error | null = null;
    c.on('error', (e) => (spawnError = e));
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const isDone = (): boolean => c.exitCode !== null || c.signalCode !== null || spawnError !== null;

    const state = await waitFor(
      `Dovecot to accept connections on LMTP ${lmtpPort} and IMAP ${imapPort}`,
      async () => (isDone() ? 'exited' : (await accepts(lmtpPort)) && (await accepts(imapPort)) ? 'ready' : null),
      START_TIMEOUT_MS,
      50,
    ).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\n--- dovecot output ---\n${output}\n--- dovecot.log ---\n${await readIfExists(join(dir, 'dovecot.log'))}`);
    });
    if (state === 'exited') {
      const log = output + (await readIfExists(join(dir, 'dovecot.log')));
      running.delete(c);
      await cleanup();
      if (/Address already in use/i.test(log)) return { clash: true };
      throw new Error(`Dovecot exited during start-up (${spawnError ?? `code ${c.exitCode}, signal ${c.signalCode}`}):\n${log}`);
    }

    let finalLog: string | null = null;
    let stopping: Promise<void> | null = null;
    const log = async (): Promise<string> => finalLog ?? (await readIfExists(join(dir, 'dovecot.log'))) + output;
    return {
      lmtpPort,
      imapPort,
      dir,
      async setPushMetadata(login, password, value) {
        const imap = await ImapClient.connect(imapPort);
        try {
          await imap.login(login, password);
          await imap.command(`SETMETADATA "" (${PUSH_METADATA_KEY} ${value === null ? 'NIL' : imapQuote(value)})`);
        } finally {
          await imap.logout();
        }
      },
      deliver: (d) => lmtpDeliver(lmtpPort, d),
      deliverLda: (d) => ldaDeliver(conf, d),
      log,
      stop() {
        stopping ??= (async () => {
          if (!isDone()) {
            c.kill('SIGTERM');
            const killed = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(r, STOP_TIMEOUT_MS, false).unref())]);
            if (!killed) {
              c.kill('SIGKILL');
              await exited;
            }
          }
          running.delete(c);
          finalLog = await log();
          await cleanup();
        })();
        return stopping;
      },
    };
  } catch (e) {
    if (child && child.exitCode === null && child.signalCode === null) {
      const done = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await done;
    }
    if (child) running.delete(child);
    await cleanup();
    throw e;
  }
}

/** Starts a Dovecot instance (must run as root) and waits until LMTP and IMAP accept connections. */
export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  if (!existsSync(DOVECOT_BIN)) {
    throw new Error(
      `${DOVECOT_BIN} not found: install Dovecot 2.3 with ` +
        '`DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-core dovecot-lmtpd dovecot-imapd`',
    );
  }
  if (process.getuid?.() !== 0) throw new Error('startDovecot: the Dovecot master must run as root');
  checkOptions(opts);
  // freePort() closes the port again before Dovecot binds it; on the rare clash, try fresh ports.
  for (let attempt = 1; ; attempt++) {
    const r = await startOnce(opts);
    if (!('clash' in r)) return r;
    if (attempt >= 3) throw new Error('startDovecot: ports kept being taken (Address already in use)');
  }
}
