// eventshop console: the page. It reads the console's event stream
// (/events, Server-Sent Events), draws each order's saga as a sequence
// diagram, places orders through the console (/api/orders, passed on to
// order-service), shows the live panel (/api/status) and the daemons'
// fault switches (/api/faults: listed, set and cleared through the
// console, which passes the change on to the daemon's admin server).
//
// Every piece of event text reaches the page through textContent or an
// attribute set with setAttribute, never as markup: events are untrusted.
'use strict';

const MAX_ORDERS = 20; // orders kept on the page; older ones are dropped
const OPEN_ORDERS = 3; // the newest are open, the others collapsed
const MAX_SEEN = 20000; // topic/partition/offset keys remembered for dedup
const MAX_POISON = 50;
const SVG = 'http://www.w3.org/2000/svg';

// Lanes, left to right: who produces and who consumes.
const LANES = ['client', 'order-service', 'Kafka', 'payment-service',
  'inventory-service', 'email-service', 'analytics-service', 'shipping-service'];
const LANE_W = 150;
const ROW_H = 44;
const TOP = 60;

// Who consumes each type (the contract's topic table).
const CONSUMERS = {
  OrderPlaced: ['payment-service', 'inventory-service', 'email-service', 'analytics-service'],
  OrderConfirmed: ['inventory-service', 'email-service', 'analytics-service', 'shipping-service'],
  OrderCancelled: ['payment-service', 'inventory-service', 'email-service', 'analytics-service',
    'shipping-service'],
  PaymentProcessed: ['order-service', 'analytics-service'],
  PaymentFailed: ['order-service', 'analytics-service'],
  PaymentRefunded: ['order-service', 'email-service', 'analytics-service'],
  InventoryReserved: ['order-service', 'analytics-service'],
  InventoryRejected: ['order-service', 'analytics-service'],
  InventoryReleased: ['order-service', 'analytics-service'],
  EmailSent: ['analytics-service'],
  ShipmentCreated: ['analytics-service'],
  ShipmentDispatched: ['email-service', 'analytics-service'],
  ShipmentDelivered: ['analytics-service'],
  ShipmentCancelled: ['analytics-service'],
};
const COMPENSATIONS = new Set(['PaymentRefunded', 'InventoryReleased']);
const FAILURES = new Set(['PaymentFailed', 'InventoryRejected', 'OrderCancelled']);

const orders = new Map(); // orderId -> order
// What came and what was dropped as already seen (after a reconnect or a
// console restart); the browser test reads it.
window.consoleStats = { received: 0, duplicates: 0 };
const seen = new Map(); // "topic/partition@offset" -> true, insertion-ordered

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function str(v) { return typeof v === 'string' ? v : ''; }

function laneX(name) {
  const i = LANES.indexOf(name);
  return (i < 0 ? LANES.length - 1 : i) * LANE_W + LANE_W / 2;
}

function producer(ev) {
  const src = str(ev.ce && ev.ce.source);
  const name = src.slice(src.lastIndexOf('/') + 1);
  return LANES.includes(name) ? name : 'Kafka';
}

// ------------------------------------------------------------ orders

function orderFor(id) {
  let o = orders.get(id);
  if (o) return o;
  o = { id, events: [], byId: new Map(), placedViaPage: false, customer: '', status: 'PENDING' };
  o.root = el('details', { class: 'order', 'data-order-id': id });
  o.root.open = true;
  const summary = el('summary');
  summary.append(el('span', { class: 'oid' }, id.slice(0, 8)));
  o.customerEl = el('span', { class: 'customer' });
  summary.append(o.customerEl);
  o.statusEl = el('span', { class: 'status', 'data-status': 'PENDING' }, 'PENDING');
  summary.append(o.statusEl);
  o.reasonEl = el('span', { class: 'reason muted' });
  summary.append(o.reasonEl);
  o.root.append(summary);
  o.diagram = el('div', { class: 'diagram' });
  o.root.append(o.diagram);
  o.emails = el('ul', { class: 'emails' });
  o.root.append(o.emails);
  orders.set(id, o);
  const list = document.getElementById('orders');
  list.prepend(o.root);
  // Newest open, older collapsed, oldest dropped.
  let i = 0;
  for (const child of Array.from(list.children)) {
    if (i >= MAX_ORDERS) {
      orders.delete(child.getAttribute('data-order-id'));
      child.remove();
    } else if (i >= OPEN_ORDERS) {
      child.open = false;
    }
    i++;
  }
  return o;
}

function depth(o, ev, guard) {
  const cause = o.byId.get(str(ev.ce.causationid));
  if (!cause || guard > 50) return 0;
  return depth(o, cause, guard + 1) + 1;
}

function timeOf(ev) {
  const t = Date.parse(str(ev.ce.time));
  return Number.isFinite(t) ? t : 0;
}

// Causal order: event time, then how far from the first cause, then
// arrival (events of one order come from several topics, which a reader
// fetches each at its own pace).
function sorted(o) {
  return o.events.slice().sort((a, b) =>
    (timeOf(a) - timeOf(b)) || (depth(o, a, 0) - depth(o, b, 0)) || (a.arrival - b.arrival));
}

function addEvent(o, ev) {
  ev.arrival = o.events.length;
  o.events.push(ev);
  if (ev.ce.id) o.byId.set(str(ev.ce.id), ev);
  const type = str(ev.ce.type);
  const data = ev.data || {};
  if (type === 'OrderPlaced' && typeof data.customerId === 'string') {
    o.customer = data.customerId;
    o.customerEl.textContent = 'customer ' + data.customerId;
  }
  if (type === 'OrderConfirmed') setStatus(o, 'CONFIRMED', '');
  if (type === 'OrderCancelled') setStatus(o, 'CANCELLED', str(data.reason));
  if (type === 'EmailSent') {
    o.emails.append(el('li', { class: 'email', 'data-template': str(data.template) },
      'email sent: ' + str(data.template) + ' to ' + str(data.to)));
  }
  draw(o);
}

function setStatus(o, status, reason) {
  o.status = status;
  o.statusEl.textContent = status;
  o.statusEl.setAttribute('data-status', status);
  o.reasonEl.textContent = reason;
}

function draw(o) {
  const events = sorted(o);
  const placed = events.find((e) => e.ce.type === 'OrderPlaced');
  const t0 = placed ? timeOf(placed) : (events.length ? timeOf(events[0]) : 0);
  const rows = events.length + (o.placedViaPage ? 1 : 0);
  const width = LANES.length * LANE_W;
  const height = TOP + rows * ROW_H + 20;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  root.append(svg('title', {}, 'saga of order ' + o.id));
  for (const lane of LANES) {
    const x = laneX(lane);
    if (lane === 'Kafka') {
      root.append(svg('rect', { class: 'kafka-box', x: x - 40, y: 6, width: 80, height: 22, rx: 4 }));
      root.append(svg('text', { class: 'lane-name kafka-name', x, y: 21, 'text-anchor': 'middle' }, lane));
    } else {
      root.append(svg('text', { class: 'lane-name', x, y: 21, 'text-anchor': 'middle' }, lane));
    }
    root.append(svg('line', { class: 'lane', x1: x, y1: 30, x2: x, y2: height }));
  }
  let y = TOP;
  if (o.placedViaPage) {
    root.append(arrow('client', 'order-service', y, 'POST /orders', '202 Accepted', '', 'request'));
    y += ROW_H;
  }
  for (const ev of events) {
    const type = str(ev.ce.type);
    const from = producer(ev);
    const cls = COMPENSATIONS.has(type) ? 'compensation' : FAILURES.has(type) ? 'fail' : 'event';
    const where = `${ev.topic}/${ev.partition}@${ev.offset}`;
    const ms = placed ? `+${timeOf(ev) - t0} ms` : '';
    const g = arrow(from, 'Kafka', y, type, where, ms, cls);
    // The whole event on hover (as text: a title element's textContent).
    g.prepend(svg('title', {}, JSON.stringify({ ce: ev.ce, key: ev.key, data: ev.data }, null, 1)));
    g.setAttribute('data-type', type);
    g.setAttribute('data-topic', str(ev.topic));
    g.setAttribute('data-offset', String(ev.offset));
    // Delivered to its consumers: a dot on each consumer's lane.
    const dg = svg('g', { class: 'delivery' });
    for (const to of CONSUMERS[type] || []) {
      dg.append(svg('circle', { cx: laneX(to), cy: y, r: 3.5 }));
    }
    g.append(dg);
    root.append(g);
    y += ROW_H;
  }
  o.diagram.replaceChildren(root);
}

// An arrow from lane a to lane b at height y, its label above it.
function arrow(a, b, y, type, where, ms, cls) {
  const x1 = laneX(a);
  const x2 = laneX(b);
  const dir = x2 > x1 ? 1 : -1;
  const g = svg('g', { class: 'arrow ' + cls });
  g.append(svg('line', { x1, y1: y, x2: x2 - dir * 6, y2: y }));
  g.append(svg('polygon', {
    points: `${x2},${y} ${x2 - dir * 8},${y - 4} ${x2 - dir * 8},${y + 4}`,
    class: 'head',
  }));
  const lx = Math.min(x1, x2) + 4;
  g.append(svg('text', { class: 'type', x: lx, y: y - 16 }, type));
  g.append(svg('text', { class: 'where', x: lx, y: y - 4 }, `${where}  ${ms}`));
  return g;
}

// ------------------------------------------------------------ the stream

function seenBefore(ev) {
  const key = `${ev.topic}/${ev.partition}@${ev.offset}`;
  window.consoleStats.received++;
  if (seen.has(key)) {
    window.consoleStats.duplicates++;
    return true;
  }
  seen.set(key, true);
  if (seen.size > MAX_SEEN) seen.delete(seen.keys().next().value);
  return false;
}

function onKafka(msg) {
  let ev;
  try {
    ev = JSON.parse(msg.data);
  } catch (e) {
    return;
  }
  if (!ev || typeof ev !== 'object' || seenBefore(ev)) return;
  if (ev.poison || ev.dlq) {
    addPoison(ev);
    if (ev.poison) return;
  }
  if (ev.dlq) return; // a dead letter is shown once, in its list
  const id = str(ev.ce && ev.ce.subject) || str(ev.key);
  if (!id || !ev.ce) return;
  addEvent(orderFor(id), ev);
}

function addPoison(ev) {
  const list = document.getElementById('poison');
  const li = el('li', { class: ev.dlq ? 'dead-letter' : 'poison' });
  li.append(el('span', {}, `${ev.topic}/${ev.partition}@${ev.offset}  `));
  const why = ev.dlq ? str(ev.dlq.error) : str(ev.poison);
  li.append(el('span', { class: 'why' }, (ev.dlq ? 'dead letter: ' : 'poison: ') + why));
  if (ev.raw !== undefined) li.append(el('div', { class: 'raw' }, 'value: ' + str(ev.raw)));
  else if (ev.ce) li.append(el('div', { class: 'raw' }, `${str(ev.ce.type)} of ${str(ev.ce.subject)}`));
  list.prepend(li);
  while (list.children.length > MAX_POISON) list.lastElementChild.remove();
}

function connect() {
  const conn = document.getElementById('conn');
  const es = new EventSource('/events');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.setAttribute('data-state', 'live');
  });
  es.addEventListener('error', () => {
    conn.textContent = 'reconnecting';
    conn.setAttribute('data-state', 'reconnecting');
    // The browser retries by itself, unless the answer was no stream at
    // all: then start over (what was drawn already is dropped as seen).
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
  es.addEventListener('kafka', onKafka);
}

// ------------------------------------------------------------ storefront

function money(cents, currency) {
  return (cents / 100).toFixed(2) + ' ' + str(currency);
}

async function loadCatalog() {
  const body = document.querySelector('#catalog tbody');
  try {
    const r = await fetch('/api/products');
    const j = await r.json();
    const products = Array.isArray(j) ? j : (j.products || []);
    body.replaceChildren();
    for (const p of products) {
      const tr = el('tr');
      tr.append(el('td', {}, str(p.name)));
      tr.append(el('td', {}, money(p.priceCents, p.currency)));
      const td = el('td');
      td.append(el('input', { type: 'number', min: 0, max: 100, value: 0, 'data-sku': str(p.sku), 'aria-label': str(p.sku) }));
      tr.append(td);
      body.append(tr);
    }
  } catch (e) {
    body.replaceChildren(el('tr', {}, 'order-service did not answer; reload to try again'));
  }
}

// An answer shown in the box of that id (#answer, #fault-answer).
function showAnswer(ok, text, id = 'answer') {
  const a = document.getElementById(id);
  a.hidden = false;
  a.className = 'answer ' + (ok ? 'ok' : 'error');
  a.textContent = text;
}

async function placeOrder(event) {
  event.preventDefault();
  const items = [];
  for (const input of document.querySelectorAll('#catalog input[data-sku]')) {
    const q = Number(input.value);
    if (q > 0) items.push({ sku: input.getAttribute('data-sku'), quantity: q });
  }
  const order = {
    customerId: document.getElementById('customer').value,
    customerEmail: document.getElementById('email').value,
    paymentToken: document.getElementById('token').value,
    items,
  };
  const headers = { 'Content-Type': 'application/json' };
  if (window.crypto && crypto.randomUUID) headers['Idempotency-Key'] = crypto.randomUUID();
  let r;
  try {
    r = await fetch('/api/orders', { method: 'POST', headers, body: JSON.stringify(order) });
  } catch (e) {
    showAnswer(false, 'the console did not answer');
    return;
  }
  const text = await r.text();
  let j = null;
  try { j = JSON.parse(text); } catch (e) { /* shown as text */ }
  if (r.status === 202 && j && typeof j.orderId === 'string') {
    const o = orderFor(j.orderId);
    o.placedViaPage = true;
    draw(o);
    showAnswer(true, `${r.status} ${r.statusText}\norder ${j.orderId}\n${text}`);
    document.getElementById('answer').setAttribute('data-order-id', j.orderId);
  } else {
    let detail = text;
    if (j && typeof j === 'object') {
      detail = `${str(j.title)}: ${str(j.detail)}`;
      for (const e of Array.isArray(j.errors) ? j.errors : []) detail += `\n  ${str(e.pointer)}: ${str(e.detail)}`;
    }
    showAnswer(false, `${r.status} ${r.statusText}\n${detail}`);
    document.getElementById('answer').removeAttribute('data-order-id');
  }
}

// ------------------------------------------------------------ live panel

async function refreshStatus() {
  let s;
  try {
    s = await (await fetch('/api/status')).json();
  } catch (e) {
    return;
  }
  const services = document.getElementById('services');
  services.replaceChildren();
  for (const svc of s.services || []) {
    services.append(el('li', { 'data-ready': svc.ready === true }, `${str(svc.name)}: ${str(svc.detail)}`));
  }
  const lag = document.querySelector('#lag tbody');
  lag.replaceChildren();
  for (const g of s.groups || []) {
    const tr = el('tr', { 'data-group': str(g.group) });
    tr.append(el('td', {}, str(g.group)));
    const parts = Object.entries(g.lag || {}).map(([t, n]) => `${t.slice(t.lastIndexOf('.') + 1)} ${Number(n)}`);
    const total = Object.values(g.lag || {}).reduce((a, n) => a + Number(n), 0);
    // Unknown: the broker did not answer, or the group committed nothing.
    const shown = g.known && parts.length ? String(total) : '?';
    tr.append(el('td', { class: 'count', title: parts.join(', ') || 'not known' }, shown));
    lag.append(tr);
    if (parts.length) {
      const d = el('tr', { class: 'detail' });
      d.append(el('td', { colspan: 2 }, parts.join(' · ')));
      lag.append(d);
    }
  }
  const topics = document.querySelector('#topics tbody');
  const dlq = document.querySelector('#dlq tbody');
  topics.replaceChildren();
  dlq.replaceChildren();
  for (const t of s.topics || []) {
    const tr = el('tr', { 'data-topic': str(t.topic) });
    tr.append(el('td', {}, str(t.topic)));
    if (t.dlq) {
      tr.append(el('td', { class: 'count' }, String(t.messages === undefined || t.messages === null ? '?' : t.messages)));
      dlq.append(tr);
      if (t.lastReason) {
        const why = el('tr', { class: 'reason' });
        why.append(el('td', { colspan: 2, title: str(t.lastReason) }, 'last: ' + str(t.lastReason)));
        dlq.append(why);
      }
    } else {
      tr.append(el('td', {}, Number(t.eventsPerSecond || 0).toFixed(0)));
      topics.append(tr);
    }
  }
  const held = s.held || {};
  document.getElementById('held').textContent =
    `${Number(s.pages) || 0} page(s) open; the console holds ${Number(held.events) || 0} events`;
}

// ------------------------------------------------------------ fault switches

// One row per (daemon, switch), made once and updated in place, so that a
// value being typed survives the refresh.
const faultRows = new Map(); // "service/name" -> { tr, valueEl }

// A change through the console: a JSON POST (the console refuses any
// other, and any from another origin).
async function changeFault(change) {
  let r;
  try {
    r = await fetch('/api/faults', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(change),
    });
  } catch (e) {
    showAnswer(false, 'the console did not answer', 'fault-answer');
    return;
  }
  const text = await r.text();
  let j = null;
  try { j = JSON.parse(text); } catch (e) { /* shown as text */ }
  const what = change.clear ? `clear ${change.name || 'all'}` : `set ${change.name} ${change.value}`;
  if (r.ok) {
    showAnswer(true, `${change.service}: ${what}: done`, 'fault-answer');
  } else {
    const detail = j && typeof j === 'object' ? `${str(j.title)}: ${str(j.detail)}` : text;
    showAnswer(false, `${change.service}: ${what}: ${r.status} ${detail}`, 'fault-answer');
  }
  refreshFaults();
}

function faultRow(service, f) {
  const tr = el('tr', { 'data-fault': str(f.name) });
  tr.append(el('td', { title: str(f.help) }, str(f.name)));
  const valueEl = el('td', { class: 'value' });
  tr.append(valueEl);
  const td = el('td');
  const input = el('input', {
    type: 'number', min: Number(f.min), max: Number(f.max), step: 1,
    value: Number(f.max) === 1 ? 1 : Math.min(Number(f.max), Math.max(Number(f.min), 1)),
    'aria-label': `${service} ${str(f.name)}`,
  });
  if (Number(f.min) === Number(f.max)) input.disabled = true;
  const set = el('button', { type: 'button', class: 'set', title: str(f.help) }, 'set');
  set.addEventListener('click', () =>
    changeFault({ service, name: str(f.name), value: Number(input.value) }));
  const clear = el('button', { type: 'button', class: 'clear' }, 'clear');
  clear.addEventListener('click', () => changeFault({ service, name: str(f.name), clear: true }));
  td.append(input, set, clear);
  tr.append(td);
  return { tr, valueEl };
}

async function refreshFaults() {
  let s;
  try {
    s = await (await fetch('/api/faults')).json();
  } catch (e) {
    return;
  }
  const root = document.getElementById('fault-services');
  for (const svc of s.services || []) {
    const service = str(svc.name);
    let box = Array.from(root.children).find((b) => b.getAttribute('data-service') === service);
    if (!box) {
      box = el('div', { class: 'fault-service', 'data-service': service });
      const h = el('h3', {}, service);
      h.append(el('small', { class: 'detail' }));
      box.append(h, el('table', {}, null));
      box.querySelector('table').append(el('tbody'));
      root.append(box);
    }
    const faults = Array.isArray(svc.faults) ? svc.faults : [];
    box.querySelector('.detail').textContent = faults.length ? '' : str(svc.detail);
    box.setAttribute('data-reachable', faults.length > 0);
    const body = box.querySelector('tbody');
    for (const f of faults) {
      const key = `${service}/${str(f.name)}`;
      let row = faultRows.get(key);
      if (!row || row.tr.parentNode !== body) {
        row = faultRow(service, f);
        faultRows.set(key, row);
        body.append(row.tr);
      }
      const on = Number(f.value) !== Number(f.off);
      row.tr.setAttribute('data-on', on);
      row.tr.setAttribute('data-value', Number(f.value));
      row.valueEl.textContent = on ? String(Number(f.value)) : 'off';
    }
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('order-form').addEventListener('submit', placeOrder);
  loadCatalog();
  connect();
  refreshStatus();
  setInterval(refreshStatus, 2000);
  refreshFaults();
  setInterval(refreshFaults, 2000);
});
