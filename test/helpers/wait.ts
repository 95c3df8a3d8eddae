/** Waits for `probe` to return a truthy value, polling; fails with `what` after `timeoutMs`. Never a bare sleep. */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Resolves with the first emission of `event`, or rejects after `timeoutMs`. */
export function once<T = unknown>(emitter: { once(ev: string, fn: (...a: any[]) => void): unknown; off?(ev: string, fn: (...a: any[]) => void): unknown }, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`)), timeoutMs);
    emitter.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve((args.length <= 1 ? args[0] : args) as T);
    });
  });
}
