import { Agent, request } from 'node:http';
import { PUSH_TOKEN } from './config-dir.js';

/** One POST /api/push on `agent`: the status, or the error code a reset or refusal gives. */
export function pushOnce(url: string, agent: Agent, body: Record<string, unknown>): Promise<{ status: number } | { error: string }> {
  const text = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(`${url}/api/push`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), authorization: `Bearer ${PUSH_TOKEN}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode! }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end(text);
  });
}

export { Agent };
