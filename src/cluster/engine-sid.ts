import { randomBytes } from 'node:crypto';

/**
 * Engine.IO session ids that name their owner: `<node id, base64url>.<120 random bits>`.
 * Any node can tell from a polling request which node holds its Engine.IO session, so a
 * round-robin balancer needs no affinity (the request is relayed to the owner, see poll-relay.ts).
 * The owner part only picks a live cluster member to relay to; it grants nothing by itself.
 */
export function engineSid(nodeId: string): string {
  return `${Buffer.from(nodeId, 'utf8').toString('base64url')}.${randomBytes(15).toString('base64url')}`;
}

/** The owner node id of a sid made by `engineSid`, or null for any other string. */
export function ownerOfSid(sid: string): string | null {
  const dot = sid.indexOf('.');
  if (dot <= 0 || dot !== sid.lastIndexOf('.') || !/^[A-Za-z0-9_-]+$/.test(sid.slice(0, dot))) return null;
  const owner = Buffer.from(sid.slice(0, dot), 'base64url').toString('utf8');
  return owner === '' ? null : owner;
}
