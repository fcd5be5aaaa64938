// A TCP proxy the test controls, to partition one node from etcd: it forwards to its target until blackhole(),
// then silently drops every byte both ways (the sockets stay open: no reset, no FIN, as in a real partition).
// heal() forwards again; connections that lost bytes meanwhile are closed (their streams are corrupt), so the
// client reconnects through the proxy.
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** 127.0.0.1:PORT */
  readonly address: string;
  blackhole(): void;
  heal(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  tainted: boolean;
}

export async function startProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let dropping = false;
  const pairs = new Set<Pair>();
  const end = (p: Pair) => {
    pairs.delete(p);
    p.client.destroy();
    p.upstream?.destroy();
  };
  const wire = (p: Pair) => {
    const up = createConnection({ host: targetHost, port: targetPort });
    p.upstream = up;
    up.on('data', (chunk: Buffer) => (dropping ? (p.tainted = true) : p.client.write(chunk)));
    up.on('error', () => end(p));
    up.on('close', () => end(p));
  };
  const server: Server = createServer((client) => {
    const p: Pair = { client, upstream: undefined, tainted: dropping };
    pairs.add(p);
    client.on('data', (chunk: Buffer) => {
      if (dropping || !p.upstream) p.tainted = true;
      else p.upstream.write(chunk);
    });
    client.on('error', () => end(p));
    client.on('close', () => end(p));
    // Accepted during a partition: nothing reaches the target (the client's SYN "got through", nothing else).
    if (!dropping) wire(p);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    blackhole() {
      dropping = true;
    },
    heal() {
      dropping = false;
      for (const p of [...pairs]) if (p.tainted || !p.upstream) end(p);
    },
    async close() {
      for (const p of [...pairs]) end(p);
      server.close();
      await once(server, 'close');
    },
  };
}
