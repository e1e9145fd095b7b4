import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A server running on 127.0.0.1; `close()` is idempotent. */
export interface LoopbackServer {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  url: string;
  /** Stops listening, destroys open connections and waits for whatever the server started. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (`port` 0 picks a free one) and resolves with the port. */
export function listenOnLoopback(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops listening and destroys open connections (keep-alive or hung), so it resolves at once. */
export async function stopListening(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
