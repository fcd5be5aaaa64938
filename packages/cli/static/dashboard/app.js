// The dashboard page: one EventSource for everything (the server pushes each change), DOM built with
// textContent only (names come from other processes: never parsed as HTML), actions as same-origin POSTs
// with the token in a header.
import { Timeline } from './timeline.js';

const MAX_ROWS = 500;
const TOKEN_KEY = 'libipc-dashboard-token';
const $ = (id) => document.getElementById(id);

const view = { registry: null, services: null, channels: null, timeline: [] };
let skew = 0; // server clock - our clock
const timeline = new Timeline($('timeline'));

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('data-')) el.setAttribute(k, String(v));
    else if (k === 'onclick') el.addEventListener('click', v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function now() {
  return Date.now() + skew;
}

function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d${String(hr % 24).padStart(2, '0')}h`;
}

function clock(ms) {
  const d = new Date(ms);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Cells whose text is an age: refreshed every second here, from the times the server sent. */
function ageCell(since, suffix = '') {
  return h('td', { 'data-since': since ?? '', 'data-suffix': suffix }, since ? `${duration(now() - since)}${suffix}` : '-');
}

function tickAges() {
  for (const td of document.querySelectorAll('[data-since]')) {
    const since = Number(td.dataset.since);
    if (since) td.textContent = `${duration(now() - since)}${td.dataset.suffix ?? ''}`;
  }
}

function replaceRows(table, rows, empty, cols) {
  const body = $(table).tBodies[0];
  const shown = rows.slice(0, MAX_ROWS);
  if (rows.length === 0) shown.push(h('tr', {}, h('td', { class: 'empty', colspan: cols }, empty)));
  if (rows.length > MAX_ROWS) shown.push(h('tr', {}, h('td', { class: 'empty', colspan: cols }, `… and ${rows.length - MAX_ROWS} more`)));
  body.replaceChildren(...shown);
}

// ---- sections ----

function renderGroups(reg, previous) {
  const before = new Map((previous?.groups ?? []).map((g) => [`${g.domain}/${g.name}`, g]));
  const cards = reg.groups.map((g) => {
    const key = `${g.domain}/${g.name}`;
    const f = g.lastFailover;
    const moved = before.has(key) && before.get(key).epoch !== g.epoch;
    return h(
      'article',
      { class: `group${moved ? ' flash' : ''}`, 'data-group': key, 'data-epoch': g.epoch },
      h('h3', {}, g.name, ' ', h('small', {}, `domain ${g.domain}`)),
      h('div', {}, h('span', { class: `primary${g.primaryAlive ? '' : ' lost'}`, 'data-field': 'primary' }, g.primary ?? 'no primary')),
      h(
        'dl',
        {},
        h('dt', {}, 'primary pid'),
        h('dd', { 'data-field': 'primary-pid' }, g.primaryPid ?? '-', g.primary && !g.primaryAlive ? h('span', { class: 'bad' }, ' (dead)') : null),
        h('dt', {}, 'epoch'),
        h('dd', { 'data-field': 'epoch' }, g.epoch),
        h('dt', {}, 'last failover'),
        h(
          'dd',
          { 'data-field': 'failover' },
          f
            ? `${f.from ?? '(none)'} → ${f.to} at ${clock(f.at)}${f.durationMs === null ? '' : `, ${f.durationMs} ms after its death was seen`}`
            : 'none seen',
        ),
      ),
    );
  });
  $('groups').replaceChildren(...(cards.length ? cards : [h('div', { class: 'empty' }, 'no group records')]));
}

function renderEntries(reg) {
  const problems = reg.domains.filter((d) => d.problem).map((d) => `${d.domain}: ${d.problem}`);
  $('domains').textContent = `${reg.domains.length} domain(s)${problems.length ? ` — ${problems.join('; ')}` : ''}`;
  const rows = reg.entries.map((e) =>
    h(
      'tr',
      { class: e.alive ? '' : 'dead', 'data-entry': `${e.domain}/${e.name}` },
      h('td', {}, e.domain),
      h('td', {}, e.name),
      h('td', {}, e.pid),
      h('td', { class: e.alive ? 'good' : 'bad' }, e.alive ? 'alive' : 'dead'),
      e.alive ? ageCell(e.startedAt) : h('td', {}, '-'),
      ageCell(e.heartbeatAt, ' ago'),
      h('td', {}, e.controlChannel),
      h('td', {}, e.replyChannel),
    ),
  );
  replaceRows('entries', rows, 'no registry entries', 8);
}

const STATE_TONE = { running: 'good', failed: 'bad', backoff: 'warn', starting: 'warn', stopping: 'warn' };

function renderServices(sv) {
  $('stores').textContent = sv.stores
    .map((s) => `${s.path}${s.manager ? ` (run pid ${s.manager.pid}${s.manager.alive ? '' : ', dead'})` : ''}${s.problem ? ` — ${s.problem}` : ''}`)
    .join('; ') || 'no libipc run found (start one, or pass --store)';
  const mib = (b) => (b >= 1 << 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);
  const rows = sv.services.map((s) => {
    const exit = s.lastExit ? (s.lastExit.signal ?? (s.lastExit.code === null ? 'unknown' : `code ${s.lastExit.code}`)) : '-';
    const shown = s.shownState ?? s.state;
    // No live run manages an orphaned (or gone) one: nothing to ask, and the note says what can be done.
    const managed = shown !== 'orphaned' && shown !== 'gone';
    const stopped = s.desired === 'stopped' || s.state === 'stopped' || s.state === 'failed' || s.state === 'exited';
    const also = (word, list) => (list ? ` (also ${word} ${list})` : '');
    const startAlso = [s.cascade?.start, s.cascade?.startDependents?.length ? compact(s.cascade.startDependents) : ''].filter(Boolean).join(', ');
    const button = (action, label, title) => h('button', { 'data-action': action, title, onclick: () => act(s, action) }, label);
    return h(
      'tr',
      { 'data-service': s.name, 'data-store': s.storeId, class: managed ? '' : 'orphan' },
      h('td', {}, s.name),
      h('td', { class: 'store', title: s.storeLabel ?? '' }, s.storeLabel ?? ''),
      h('td', { class: shown === 'orphaned' ? 'warn' : shown === 'gone' ? 'bad' : (STATE_TONE[shown] ?? ''), 'data-field': 'state' }, shown),
      h('td', { 'data-field': 'pid' }, s.pid === null ? '-' : s.alive ? s.pid : `${s.pid} (dead)`),
      h('td', { 'data-field': 'cpu' }, s.alive && typeof s.cpu === 'number' ? `${s.cpu < 10 ? s.cpu.toFixed(1) : Math.round(s.cpu)}%` : '-'),
      h('td', { 'data-field': 'mem' }, s.alive && typeof s.rssBytes === 'number' ? mib(s.rssBytes) : '-'),
      h('td', { 'data-field': 'restarts' }, s.restarts),
      s.startedAt && s.alive ? ageCell(s.startedAt) : h('td', {}, '-'),
      h('td', {}, exit),
      h('td', { class: 'reason' }, s.note ?? s.restartNote ?? s.reason ?? ''),
      h(
        'td',
        { class: 'actions' },
        managed
          ? [
              button('restart', 'Restart', `restart ${s.name}${also('restarts', s.cascade?.restart)}`),
              stopped
                ? button('start', startAlso ? 'Start…' : 'Start', `start ${s.name}${startAlso ? ` (also starts ${startAlso})` : ''}`)
                : button('stop', s.cascade?.stop ? 'Stop…' : 'Stop', `stop ${s.name}${also('stops', s.cascade?.stop)}`),
            ]
          : h('span', { class: 'muted' }, 'no run manages it'),
      ),
    );
  });
  replaceRows('services', rows, 'no supervisor services', 9);
  syncButtons();
}

/** `worker.0-2`: runs of instances shortened (as the server does). */
function compact(names) {
  const out = [];
  const sorted = [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (let i = 0; i < sorted.length; ) {
    const m = /^(.*)\.(\d+)$/.exec(sorted[i]);
    let j = i;
    while (m && j + 1 < sorted.length && sorted[j + 1] === `${m[1]}.${Number(m[2]) + (j + 1 - i)}`) j++;
    out.push(j > i ? `${sorted[i]}-${Number(m[2]) + (j - i)}` : sorted[i]);
    i = j + 1;
  }
  return out.join(', ');
}

function renderChannels(ch) {
  $('channel-count').textContent = `${ch.total} channel(s)${ch.total > ch.channels.length ? `, first ${ch.channels.length} shown` : ''}`;
  const rows = ch.channels.map((c) => {
    const fill = c.fill === null ? h('td', { class: 'muted', title: 'not reported' }, 'n/a') : h('td', {}, meter(c.fill), ` ${Math.round(c.fill * 100)}%`);
    return h(
      'tr',
      { 'data-channel': c.name },
      h('td', {}, c.name, c.problem ? h('span', { class: 'bad' }, ` ${c.problem}`) : null),
      h('td', {}, c.type),
      h('td', {}, c.onFull),
      h('td', {}, c.capacity),
      fill,
      h('td', {}, c.messages),
      h('td', {}, c.senders),
      h('td', {}, `${c.receivers}${c.activeReceivers !== c.receivers ? ` (${c.activeReceivers} active)` : ''}`),
      h('td', { class: c.lagged === null ? 'muted' : '' }, c.lagged === null ? 'n/a' : c.lagged),
      h('td', { class: c.deadHandles ? 'warn' : '' }, c.deadHandles),
    );
  });
  replaceRows('channels', rows, 'no channels in /dev/shm', 10);
}

function meter(fraction) {
  const bar = h('span');
  bar.style.width = `${Math.min(100, Math.max(0, fraction * 100))}%`;
  return h('span', { class: 'meter' }, bar);
}

function renderEvents() {
  const recent = view.timeline.slice(-60).reverse();
  $('events').replaceChildren(
    ...recent.map((e) =>
      h('li', { 'data-event': e.type, 'data-source': e.source }, h('span', { class: 'time' }, clock(e.at)), h('span', { class: 'type' }, `${e.source} ${e.type}`), ` ${e.name} `, h('span', { class: 'muted' }, e.detail)),
    ),
  );
  timeline.update(view.timeline);
}

const RENDER = {
  registry: (data, prev) => {
    renderGroups(data, prev);
    renderEntries(data);
  },
  services: renderServices,
  channels: renderChannels,
};

function setSection(name, data) {
  const prev = view[name];
  view[name] = data;
  RENDER[name]?.(data, prev);
}

// ---- the stream ----

function connect() {
  const source = new EventSource('/api/events');
  const link = $('link');
  const stamp = (serverNow) => {
    skew = serverNow - Date.now();
    $('updated').textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
  };
  source.addEventListener('state', (ev) => {
    const s = JSON.parse(ev.data);
    stamp(s.now);
    view.timeline = s.timeline;
    for (const name of Object.keys(RENDER)) setSection(name, s[name]);
    renderEvents();
    link.textContent = 'live';
    link.className = 'pill on';
    link.dataset.state = 'live';
  });
  source.addEventListener('section', (ev) => {
    const m = JSON.parse(ev.data);
    stamp(m.now);
    setSection(m.name, m.data);
  });
  source.addEventListener('timeline', (ev) => {
    const m = JSON.parse(ev.data);
    stamp(m.now);
    view.timeline.push(...m.events);
    if (view.timeline.length > 1000) view.timeline.splice(0, view.timeline.length - 1000);
    renderEvents();
  });
  source.addEventListener('error', () => {
    // EventSource reconnects by itself; the first message after that is the whole picture again.
    link.textContent = 'reconnecting…';
    link.className = 'pill off';
    link.dataset.state = 'reconnecting';
  });
}

// ---- actions ----

function token() {
  return $('token').value.trim();
}

function notice(text, tone) {
  const n = $('notice');
  n.hidden = false;
  n.className = tone;
  n.textContent = text;
}

/** Actions need the token: without one the buttons are disabled and say so. */
function syncButtons() {
  const missing = !token();
  for (const b of document.querySelectorAll('#services button[data-action]')) {
    if (b.dataset.busy) continue;
    b.disabled = missing;
    if (missing) b.setAttribute('aria-description', 'set the token first');
    else b.removeAttribute('aria-description');
  }
}

async function post(service, action, name) {
  const headers = token() ? { 'X-Libipc-Token': token() } : {};
  const url = name === service.name ? service.actions[action] : service.actions[action].replace(/\/services\/[^/]+\//, `/services/${encodeURIComponent(name)}/`);
  const res = await fetch(url, { method: 'POST', headers, credentials: 'omit', cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`refused (${res.status}): ${body.error ?? res.statusText}`);
}

async function act(service, action) {
  const buttons = document.querySelectorAll(`tr[data-service="${CSS.escape(service.name)}"][data-store="${CSS.escape(service.storeId)}"] button`);
  for (const b of buttons) {
    b.disabled = true;
    b.dataset.busy = '1';
  }
  const c = service.cascade ?? {};
  const dependents = action === 'start' ? (c.startDependents ?? []) : [];
  const also = action === 'stop' ? c.stop : action === 'restart' ? c.restart : [c.start, dependents.length ? compact(dependents) : ''].filter(Boolean).join(', ');
  const verb = action === 'stop' ? 'stops' : action === 'restart' ? 'restarts' : 'starts';
  const past = action === 'stop' ? 'stopped' : action === 'restart' ? 'restarted' : 'started';
  // Said before and after: what else the action does (dependents first for stop, dependencies first for start).
  notice(`${action} ${service.name}${also ? `: also ${verb} ${also}` : ''}…`, '');
  try {
    await post(service, action, service.name);
    // The Manager starts what a service needs, not what needs it: the dependents a stop took down come back here.
    for (const d of dependents) await post(service, 'start', d);
    notice(`${action} ${service.name}: done${also ? ` (also ${past} ${also})` : ''}`, 'ok');
  } catch (err) {
    notice(`${action} ${service.name} ${err.message}`, 'error');
  } finally {
    for (const b of buttons) delete b.dataset.busy;
    syncButtons();
  }
}

function setupToken() {
  const input = $('token');
  const state = $('token-state');
  // A token in the URL's fragment (never sent to the server) is taken once, then removed from the address bar.
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  input.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
  const show = () => (state.textContent = input.value.trim() ? 'token set' : 'restart/stop need it');
  input.addEventListener('input', () => {
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    show();
    syncButtons();
  });
  $('token-form').addEventListener('submit', (e) => e.preventDefault());
  show();
}

setupToken();
connect();
setInterval(tickAges, 1000);
