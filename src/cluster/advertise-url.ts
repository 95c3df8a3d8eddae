import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { publicUrlProblem } from '../http/origin-policy.js';

/** Why `value` is not a node's base URL (`http://10.0.0.5:8009`), or null. Used by the config schema. */
export function advertiseUrlProblem(value: string): string | null {
  return publicUrlProblem(value);
}

/**
 * This node's URL for the other nodes: `tidings.cluster.advertiseUrl`, else the bound address.
 * A wildcard listener (0.0.0.0, ::) is not an address anyone can dial, so then the first
 * non-internal IPv4 address of this machine stands in (loopback when it has none).
 */
export function advertiseUrl(configured: string, bound: AddressInfo): string {
  if (configured) return new URL(configured).origin;
  let host = bound.address;
  if (host === '0.0.0.0' || host === '::') {
    const v4 = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
    host = v4?.address ?? '127.0.0.1';
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
}
