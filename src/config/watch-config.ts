import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** Sub-folders that hold configuration besides the directory itself. */
const SUBFOLDERS = ['contextSets', 'meta'];

/** Names whose change can change the configuration; editors' swap and backup files cannot. */
function relevant(inTop: boolean, name: string | null): boolean {
  if (name === null) return true; // the platform did not say which: assume it matters
  if (/\.ya?ml$/.test(name)) return true;
  return inTop && (name.endsWith('.properties') || SUBFOLDERS.includes(name));
}

/**
 * Calls `onChange` once after a burst of edits in the config directory (and its contextSets/ and
 * meta/ folders) has settled: editors write files in several steps, and each reload parses everything.
 * A sub-folder created (or re-created) after start is picked up at the next event in the directory.
 */
export function watchConfigDir(dir: string, onChange: () => void, log: Logger, debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const watchers = new Map<string, FSWatcher>();

  const fire = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };

  const attach = (d: string, required: boolean): void => {
    if (closed || watchers.has(d)) return;
    let w: FSWatcher;
    try {
      w = watch(d, { persistent: false }, (ev, name) => {
        if (d === dir && ev === 'rename') attachSubfolders();
        if (relevant(d === dir, name === null ? null : String(name))) fire();
      });
    } catch (e) {
      // A missing optional folder is not an error; it is attached once it appears.
      if (required) log.warn({ err: String(e), dir: d }, 'cannot watch the config directory; reload with SIGHUP or `tidings reload`');
      return;
    }
    w.on('error', (e) => {
      // A removed sub-folder ends its watcher; it is attached again if it comes back.
      watchers.delete(d);
      w.close();
      if (required) log.warn({ err: String(e), dir: d }, 'config watch failed');
    });
    watchers.set(d, w);
  };

  const attachSubfolders = (): void => {
    for (const sub of SUBFOLDERS) {
      const d = join(dir, sub);
      const w = watchers.get(d);
      // A watcher on a folder that was removed and made again watches nothing: replace it.
      if (w) {
        w.close();
        watchers.delete(d);
      }
      attach(d, false);
    }
  };

  attach(dir, true);
  attachSubfolders();
  return () => {
    closed = true;
    clearTimeout(timer);
    for (const w of watchers.values()) w.close();
    watchers.clear();
  };
}
