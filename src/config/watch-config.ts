import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/**
 * Calls `onChange` once after a burst of edits in the config directory (and its contextSets/ and
 * meta/ folders) has settled: editors write files in several steps, and each reload parses everything.
 */
export function watchConfigDir(dir: string, onChange: () => void, log: Logger, debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const d of [dir, join(dir, 'contextSets'), join(dir, 'meta')]) {
    try {
      const w = watch(d, { persistent: false }, fire);
      w.on('error', (e) => log.warn({ err: String(e), dir: d }, 'config watch failed'));
      watchers.push(w);
    } catch {
      // A missing optional folder is not an error; it is picked up by an explicit reload once it exists.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
