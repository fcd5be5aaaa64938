// What the dashboard shows, as the JSON API (/api/state) and the event stream (/api/events) send it.
// Times are ms since the epoch; the page turns them into ages with the server's clock (`now`).
import type { ServiceRow } from '../store-view.js';

export interface EntryView {
  domain: string;
  name: string;
  pid: number;
  /** By its death lease first, then by process identity (pid + start time). */
  alive: boolean;
  leased: boolean;
  startedAt: number | null;
  registeredAt: number;
  heartbeatAt: number | null;
  controlChannel: string;
  replyChannel: string;
}

export interface FailoverView {
  /** The primary that was replaced (null at an election). */
  from: string | null;
  to: string;
  epoch: number;
  /** When the dashboard saw the new primary. */
  at: number;
  /** From the moment the dashboard knew the old primary was dead to the moment it saw the new one (null when it did not see the death). */
  durationMs: number | null;
}

export interface GroupView {
  domain: string;
  name: string;
  epoch: number;
  primary: string | null;
  primaryPid: number | null;
  primaryAlive: boolean;
  lastFailover: FailoverView | null;
}

export interface DomainView {
  domain: string;
  capacity: number | null;
  problem: string | null;
}

export interface RegistrySection {
  domains: DomainView[];
  entries: EntryView[];
  groups: GroupView[];
}

/** A service as `libipc ps` shows it (its row), placed on the page and with the actions it offers. */
export interface ServiceView
  extends Pick<ServiceRow, 'name' | 'service' | 'state' | 'desired' | 'pid' | 'alive' | 'restarts' | 'lastExit' | 'reason' | 'shownState' | 'orphaned' | 'note'> {
  /** Unique on the page: store id + name. */
  key: string;
  storeId: string;
  /** The store's file name without its extension (`services`, `run-4242`): tells two runs' services of one name apart. */
  storeLabel: string;
  /** What each action does to other services (see cascade.ts); `startDependents`: the page starts them too. */
  cascade: { stop: string; restart: string; start: string; startDependents: string[] };
  startedAt: number | null;
  /** CPU in percent of one core over the last second, and resident memory (from /proc; null when not running). */
  cpu: number | null;
  rssBytes: number | null;
  /** What restarted it last, while it runs after that restart ("restart (memory): RSS …"); else null. */
  restartNote: string | null;
  /** POST one of these (with the token) to act on the service. */
  actions: { restart: string; stop: string; start: string };
}

export interface StoreView {
  id: string;
  path: string;
  manager: { pid: number; alive: boolean } | null;
  problem: string | null;
}

export interface ServicesSection {
  stores: StoreView[];
  services: ServiceView[];
}

export interface ChannelView {
  name: string;
  type: string;
  onFull: string;
  capacity: number;
  slotSize: number;
  /** Messages sent so far (a decimal string: a u64). */
  messages: string;
  senders: number;
  receivers: number;
  activeReceivers: number;
  deadHandles: number;
  /** Unread messages of the slowest live receiver / capacity, and messages the attached receivers missed in 'lag' mode (null when the channel could not be read). */
  fill: number | null;
  lagged: string | null;
  problem: string | null;
}

export interface ChannelsSection {
  channels: ChannelView[];
  /** How many channels exist (the list is cut at a limit). */
  total: number;
}

export interface TimelineEvent {
  id: number;
  at: number;
  source: 'supervisor' | 'registry' | 'group' | 'dashboard';
  type: string;
  /** The service, entry or group. */
  name: string;
  detail: string;
  /** For supervisor events: the store's label (lanes of two runs' services of one name stay apart). */
  store?: string;
}

export interface Sections {
  registry: RegistrySection;
  services: ServicesSection;
  channels: ChannelsSection;
}

export type SectionName = keyof Sections;
