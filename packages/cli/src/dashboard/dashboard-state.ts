import { EventEmitter } from 'node:events';
import type { SectionName, Sections, TimelineEvent } from './model.js';

const TIMELINE_KEEP = 1000;

/**
 * The dashboard's current picture: one JSON document per section, and the time line. Sources set sections;
 * only a section whose JSON changed is announced ('section', name, json), so the stream carries changes only.
 * Events: 'section' (name, json), 'timeline' (events).
 */
export class DashboardState extends EventEmitter {
  private readonly json = new Map<SectionName, string>();
  private readonly timeline: TimelineEvent[] = [];
  private nextId = 1;

  constructor(initial: Sections) {
    super();
    // One listener per connected page: a busy page set must not trip the leak warning.
    this.setMaxListeners(0);
    for (const [name, data] of Object.entries(initial) as Array<[SectionName, unknown]>) this.json.set(name, JSON.stringify(data));
  }

  set<K extends SectionName>(name: K, data: Sections[K]): void {
    const text = JSON.stringify(data);
    if (this.json.get(name) === text) return;
    this.json.set(name, text);
    this.emit('section', name, text);
  }

  /** The section as last set (parsed again: callers may keep it). */
  get<K extends SectionName>(name: K): Sections[K] {
    return JSON.parse(this.json.get(name)!) as Sections[K];
  }

  addEvents(events: Array<Omit<TimelineEvent, 'id'>>): void {
    if (events.length === 0) return;
    const added = events.map((e) => ({ ...e, id: this.nextId++ }));
    this.timeline.push(...added);
    if (this.timeline.length > TIMELINE_KEEP) this.timeline.splice(0, this.timeline.length - TIMELINE_KEEP);
    this.emit('timeline', added);
  }

  /** Everything, as one JSON document: the page's first picture, and GET /api/state. */
  snapshotJson(extra: Record<string, unknown> = {}): string {
    const parts = [...this.json].map(([name, text]) => `${JSON.stringify(name)}:${text}`);
    const head = JSON.stringify({ now: Date.now(), ...extra }).slice(1, -1);
    return `{${head},${parts.join(',')},"timeline":${JSON.stringify(this.timeline)}}`;
  }
}
