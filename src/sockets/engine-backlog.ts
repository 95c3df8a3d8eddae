import type { Socket as EngineSocket } from 'engine.io';

interface Packet {
  readonly data?: unknown;
}

// A string counts its UTF-16 length: O(1) on every packet, exact for the ASCII JSON that events
// mostly are, and at worst a third of the UTF-8 size.
function sizeOf(p: Packet): number {
  const d = p.data;
  if (typeof d === 'string') return d.length;
  return d instanceof ArrayBuffer || ArrayBuffer.isView(d) ? d.byteLength : 0;
}

/**
 * Bytes waiting to be sent on one Engine.IO socket: its write buffer (which holds everything
 * between two polls, or while a WebSocket cannot take more), plus what its WebSocket has
 * accepted but not yet written to the network. Counted on the way in and out, never by scanning.
 */
export class EngineBacklog {
  readonly #conn: EngineSocket;
  #buffered = 0;

  constructor(conn: EngineSocket) {
    this.#conn = conn;
    conn.on('packetCreate', (p: Packet) => {
      this.#buffered += sizeOf(p);
    });
    conn.on('flush', (packets: Packet[]) => {
      for (const p of packets) this.#buffered -= sizeOf(p);
      // Packets created before this counter existed (the open packet) may flush through it.
      if (this.#buffered < 0) this.#buffered = 0;
    });
  }

  bytes(): number {
    const t = this.#conn.transport as unknown as { name: string; socket?: { bufferedAmount?: number } };
    return this.#buffered + (t.name === 'websocket' ? (t.socket?.bufferedAmount ?? 0) : 0);
  }
}
