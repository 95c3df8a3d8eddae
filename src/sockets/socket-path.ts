/** A socket's path is the request path without query and without a trailing slash (`/socket.io/appsuite/` → `/socket.io/appsuite`). */
export function socketPath(url: string | undefined): string {
  const p = (url ?? '/').split('?')[0] ?? '/';
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') || '/' : p;
}

export function queryOf(url: string | undefined): URLSearchParams {
  const i = (url ?? '').indexOf('?');
  return new URLSearchParams(i < 0 ? '' : (url ?? '').slice(i + 1));
}
