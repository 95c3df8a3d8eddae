import { randomBytes } from 'node:crypto';

// An Engine.IO session id that names the node owning the session, `<node id, base64url>.<random>`,
// so that a node can tell a session of another node from one that does not exist (any node may
// receive a polling request behind a balancer without affinity).

/** A fresh session id owned by `nodeId`: 120 random bits, as engine.io's own ids carry. */
export function newSid(nodeId: string): string {
  return `${Buffer.from(nodeId).toString('base64url')}.${randomBytes(15).toString('base64url')}`;
}

/** The node that issued `sid`, or null when it is not one of ours. */
export function ownerOfSid(sid: string): string | null {
  const m = /^([A-Za-z0-9_-]{1,200})\.[A-Za-z0-9_-]{20}$/.exec(sid);
  return m ? Buffer.from(m[1], 'base64url').toString() : null;
}
