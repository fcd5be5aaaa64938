import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DashboardState } from './dashboard-state.js';
import type { SectionName, TimelineEvent } from './model.js';

const MAX_CLIENTS = 64;
/** A page that does not read what we send (a stopped tab, a slow link) is dropped past this; it reconnects and starts afresh. */
const MAX_BUFFERED = 4 * 1024 * 1024;
const PING_MS = 15_000;

/**
 * Server-Sent Events to every open page: the whole picture on connect, then each changed section and new
 * time-line events as they happen. One listener on the state for all pages; a page's socket leaves the set when it closes.
 */
export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private readonly ping: NodeJS.Timeout;
  private readonly onSection = (name: SectionName, json: string) => this.broadcast('section', `{"name":${JSON.stringify(name)},"now":${Date.now()},"data":${json}}`);
  private readonly onTimeline = (events: TimelineEvent[]) => this.broadcast('timeline', JSON.stringify({ now: Date.now(), events }));

  constructor(
    private readonly state: DashboardState,
    /** Told how many pages are open after each change (the server samples gauges only while someone looks). */
    private readonly onCount: (n: number) => void = () => {},
  ) {
    state.on('section', this.onSection);
    state.on('timeline', this.onTimeline);
    this.ping = setInterval(() => this.comment('ping'), PING_MS);
    this.ping.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes a GET /api/events; answers 503 when too many pages are open. */
  accept(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      res.end(JSON.stringify({ error: `too many open pages (${MAX_CLIENTS}); close some` }));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 1000\n\n`);
    res.write(frame('state', this.state.snapshotJson()));
    this.clients.add(res);
    const drop = () => {
      if (this.clients.delete(res)) this.onCount(this.clients.size);
    };
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    this.onCount(this.clients.size);
  }

  /** Ends every stream (the dashboard is stopping) and stops listening to the state. */
  close(): void {
    clearInterval(this.ping);
    this.state.off('section', this.onSection);
    this.state.off('timeline', this.onTimeline);
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.onCount(0);
  }

  private broadcast(event: string, data: string): void {
    const text = frame(event, data);
    for (const res of this.clients) this.send(res, text);
  }

  private comment(text: string): void {
    for (const res of this.clients) this.send(res, `: ${text}\n\n`);
  }

  private send(res: ServerResponse, text: string): void {
    if (res.writableLength > MAX_BUFFERED) {
      this.clients.delete(res);
      res.destroy();
      this.onCount(this.clients.size);
      return;
    }
    res.write(text);
  }
}

/** One SSE message; data never holds a newline (it is JSON), so one data line. */
function frame(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}
