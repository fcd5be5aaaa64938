import { inspectRegistry } from '@libipc/registry';
import { type SegmentInfo, inspectSegment, isAlive, LibipcError, listObjects } from '@libipc/shm';
import { inspectChannel } from '@libipc/typed-channel';
import { procUsers } from './proc-users.js';

/** A process that uses an object, and how. */
export interface ObjectUser {
  pid: number;
  alive: boolean;
  /** 'attached', 'sender', 'receiver', 'entry <name>' (a registry entry keeps its domain), 'maps it', 'creator'. */
  role: string;
  /** A channel handle's row (its doorbell is libipc.chanbell.<name>.<row>). */
  row?: number;
}

/** One libipc object in /dev/shm as `libipc shm ls` shows it and `libipc shm clean` judges it. */
export interface ShmObject {
  object: string;
  kind: string;
  name: string;
  type: 'segment' | 'fifo' | 'other';
  size: number;
  uid: number;
  inode: bigint;
  creator?: { pid: number; alive: boolean };
  /** The header's state (ready, retired, …), 'doorbell' for a channel's FIFO, or what is wrong with it. */
  state: string;
  users: ObjectUser[];
  /** Some user is alive: clean never touches it. */
  inUse: boolean;
  /** Every user is dead (or there is none): clean removes it. */
  removable: boolean;
  /** Why it is kept although unused, or what could not be read. */
  note?: string;
  /** True when its header is a valid libipc header (clean retires it under its lock). */
  headed: boolean;
  /** For a doorbell: the channel it belongs to. */
  channel?: string;
}

const OWN_UID = process.getuid?.() ?? 0;

function users(info: SegmentInfo): { users: ObjectUser[]; note?: string } {
  if (info.kind === 'registry') {
    const snap = inspectRegistry(info.name);
    return {
      users: [
        ...snap.users.map((u) => ({ pid: u.pid, alive: u.alive, role: 'attached' })),
        ...snap.entries.map((e) => ({ pid: e.pid, alive: e.alive, role: `entry ${e.name}` })),
      ],
    };
  }
  if (info.kind === 'chan') {
    const snap = inspectChannel(info.name);
    return { users: snap.handles.map((h) => ({ pid: h.pid, alive: h.alive, role: h.role, row: h.row })) };
  }
  return { users: [] };
}

/** Every libipc object in /dev/shm, with its users and a verdict (sorted by name). */
export function collectObjects(): ShmObject[] {
  const mappers = procUsers();
  const out: ShmObject[] = [];
  for (const object of listObjects()) {
    let info: SegmentInfo;
    try {
      info = inspectSegment(object);
    } catch (err) {
      if (err instanceof LibipcError && err.code === 'ERR_LIBIPC_NOT_FOUND') continue; // removed meanwhile
      throw err;
    }
    out.push(judge(info, mappers.get(info.inode)));
  }
  linkDoorbells(out);
  return out.sort((a, b) => (a.object < b.object ? -1 : 1));
}

function judge(info: SegmentInfo, mappedBy: Set<number> | undefined): ShmObject {
  const o: ShmObject = {
    object: info.object,
    kind: info.kind,
    name: info.name,
    type: info.type,
    size: info.size,
    uid: info.uid,
    inode: info.inode,
    state: info.header?.state ?? (info.type === 'fifo' ? 'fifo' : 'unknown'),
    users: [],
    inUse: false,
    removable: false,
    headed: info.header !== undefined && info.problem === undefined,
  };
  if (info.header) o.creator = { pid: info.header.creator.pid, alive: info.header.creator.alive };
  if (info.kind === 'tmp') {
    // libipc.tmp.<pid>.<n>: a creation in progress on a kernel without O_TMPFILE; its pid is in its name.
    const pid = Number(/^(\d+)\./.exec(info.name)?.[1] ?? 0);
    if (pid > 0) o.creator = { pid, alive: isAlive(pid) };
  }
  let inspected = true;
  if (info.type === 'segment' && o.headed) {
    try {
      const u = users(info);
      o.users.push(...u.users);
    } catch (err) {
      if (!(err instanceof LibipcError)) throw err;
      inspected = false;
      o.note = err.message;
    }
  } else if (info.problem) {
    inspected = false;
    o.note = info.problem;
    if (info.type === 'segment' && !info.header) o.state = info.size === 0 ? 'empty' : 'foreign';
  }
  for (const pid of mappedBy ?? []) {
    if (!o.users.some((u) => u.pid === pid && u.alive)) o.users.push({ pid, alive: true, role: 'maps it' });
  }
  o.inUse = o.users.some((u) => u.alive);
  if (info.type === 'other') {
    o.note = 'not a regular file or a FIFO: not libipc\'s, left alone';
    return o;
  }
  if (info.uid !== OWN_UID) {
    o.note = `owned by uid ${info.uid}: left alone`;
    return o;
  }
  // Being made right now by a live creator (only older libipc versions show this state).
  if (o.state === 'initialising' && o.creator?.alive) o.inUse = true;
  // What we could not read is removed only when its creator is dead too.
  o.removable = !o.inUse && (inspected || !o.creator?.alive);
  return o;
}

/** A doorbell libipc.chanbell.<channel>.<row> lives and dies with its channel. */
function linkDoorbells(objects: ShmObject[]): void {
  const channels = new Map(objects.filter((o) => o.kind === 'chan').map((o) => [o.name, o]));
  for (const o of objects) {
    if (o.kind !== 'chanbell') continue;
    o.state = 'doorbell';
    const m = /^(.+)\.(\d+)$/.exec(o.name);
    if (!m) continue;
    o.channel = m[1]!;
    const chan = channels.get(o.channel);
    if (!chan) {
      o.note ??= `its channel libipc.chan.${o.channel} is gone`;
      continue; // judged on its own: removable unless a live process holds it open
    }
    const row = Number(m[2]);
    const holder = chan.users.find((u) => u.row === row);
    if (holder && !o.users.some((u) => u.pid === holder.pid)) o.users.push({ ...holder });
    // Never part of a channel in use: its receivers ring each other's bells by name.
    o.inUse = o.inUse || chan.inUse;
    o.removable = !o.inUse && chan.removable && o.uid === OWN_UID;
  }
}
