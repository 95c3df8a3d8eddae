import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/**
 * The demo webmail page: `web/index.html`, `web/app.js`, `web/style.css`, plus the official
 * Socket.IO browser client from `node_modules`, served by tidings itself (no CDN, no build step).
 * Every file is read once, when the routes are registered.
 */
export interface WebAsset {
  readonly body: Buffer;
  readonly type: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** A strict policy: the page loads only its own files and talks only to its own origin. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The `web/` folder: found by walking up from this module, so it works from `src/` and from `dist/src/`. */
export function findWebDir(start = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; ) {
    if (existsSync(join(dir, 'web', 'index.html')) && existsSync(join(dir, 'package.json'))) return join(dir, 'web');
    const up = dirname(dir);
    if (up === dir) throw new Error(`web/index.html not found above ${start}`);
    dir = up;
  }
}

/** Reads every asset once; URL path → asset. */
export function loadWebAssets(webDir = findWebDir()): Map<string, WebAsset> {
  const assets = new Map<string, WebAsset>();
  const add = (url: string, file: string) => {
    const ext = file.slice(file.lastIndexOf('.'));
    assets.set(url, { body: readFileSync(file), type: TYPES[ext] ?? 'application/octet-stream' });
  };
  add('/', join(webDir, 'index.html'));
  add('/app.js', join(webDir, 'app.js'));
  add('/style.css', join(webDir, 'style.css'));
  add('/favicon.svg', join(webDir, 'favicon.svg'));
  add('/assets/socket.io.min.js', socketIoClientFile());
  return assets;
}

/**
 * The official browser build of the Socket.IO client. Its package exports `./package.json` but
 * not `./dist/socket.io.min.js`, so resolve the package root through the former.
 */
export function socketIoClientFile(): string {
  const pkg = createRequire(import.meta.url).resolve('socket.io-client/package.json');
  return join(dirname(pkg), 'dist', 'socket.io.min.js');
}

/** Serves the page; without its files (a stripped install) tidings still runs, with a warning and no page. */
export function registerWebRoutes(app: FastifyInstance, load: () => Map<string, WebAsset> = () => loadWebAssets()): void {
  let assets: Map<string, WebAsset>;
  try {
    assets = load();
  } catch (err) {
    app.log.warn({ err: String(err) }, 'the webmail page is not served: its files are missing');
    return;
  }
  for (const [url, asset] of assets) {
    app.get(url, async (_req, reply) => {
      void reply
        .type(asset.type)
        .header('Cache-Control', 'no-cache')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Referrer-Policy', 'no-referrer');
      if (asset.type.startsWith('text/html')) void reply.header('Content-Security-Policy', CSP).header('X-Frame-Options', 'DENY');
      return asset.body;
    });
  }
  // Old links and habits: /index.html is the page too.
  app.get('/index.html', async (_req, reply) => reply.redirect('/', 301));
}
