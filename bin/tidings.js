#!/usr/bin/env node
// The compiled CLI; `npm ci` builds it (prepare script).
import('../dist/src/cli.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/src/cli.js')) {
    console.error('tidings: not built yet; run `npm run build` first');
    process.exit(1);
  }
  throw e;
});
