// e2e.console's browser half (run by it_console.c with a shop running):
// starts eventshop-console, opens its page in Debian's Chromium (headless,
// through puppeteer-core), places a tok_visa and a tok_declined order
// through the page's form and checks each diagram's arrows, in causal
// order, and final status; places an order whose customerId is markup and
// checks it shows as text; checks the poison message shows as poison;
// pauses payment-service with its fault switch from the page's panel,
// sees a tok_visa order wait (no payment arrow, PENDING) while the other
// daemons go on, clears the switch and sees the saga end; checks that
// the console refuses a switch change that is not its page's; kills the
// console (SIGKILL), starts it again and checks the page resumes without
// drawing an arrow twice. Saves a screenshot in
// ARTIFACT_DIR (console.png, and console-faults.png: the switches panel
// with payment-service paused). Exit status 0 when all holds.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const puppeteer = require('puppeteer-core');

const DEADLINE_MS = 60000;
const INJECTION = '<img src=x onerror="window.pwned=1">';

function fail(msg) {
  throw new Error(msg);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const logs = [];
function startConsole(port) {
  const child = spawn(process.env.CONSOLE_BIN, [], {
    env: { ...process.env, CONSOLE_PORT: String(port), HTTP_BIND: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = { text: '' };
  logs.push(log);
  child.stdout.on('data', (d) => { log.text += d; });
  child.stderr.on('data', (d) => { log.text += d; });
  return child;
}

async function waitFor(what, fn, timeout = DEADLINE_MS) {
  const until = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Checks that fn stays true for ms (an absence, e.g. no payment while
// payment-service is paused, can only be watched for a while): fails at
// the first false.
async function holdsFor(what, fn, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await fn())) fail(`no longer true: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function consoleUp(url) {
  await waitFor('the console to answer', async () => {
    try {
      return (await fetch(url + '/livez')).ok;
    } catch (e) {
      return false;
    }
  });
}

// Fills the form and submits it; returns the order id the page got back.
async function place(page, { customer, token, sku, quantity }) {
  const before = await page.$eval('#answer', (a) => a.getAttribute('data-order-id') || '');
  await page.$eval('#customer', (e, v) => { e.value = v; }, customer);
  await page.select('#token', token);
  await page.$$eval('#catalog input[data-sku]', (inputs) => inputs.forEach((i) => { i.value = '0'; }));
  await page.$eval(`#catalog input[data-sku="${sku}"]`, (e, q) => { e.value = String(q); }, quantity);
  await page.click('#place');
  const id = await waitFor('the 202 of the order', () => page.$eval('#answer', (a, b) => {
    const id = a.getAttribute('data-order-id');
    return id && id !== b ? id : null;
  }, before));
  const text = await page.$eval('#answer', (a) => a.textContent);
  if (!text.startsWith('202')) fail(`the page shows ${text}`);
  return id;
}

async function arrows(page, id) {
  return page.$$eval(`.order[data-order-id="${id}"] g.arrow[data-type]`, (gs) => gs.map((g) => ({
    type: g.getAttribute('data-type'),
    topic: g.getAttribute('data-topic'),
    offset: g.getAttribute('data-offset'),
    cls: g.getAttribute('class'),
    label: g.textContent,
  })));
}

async function status(page, id) {
  return page.$eval(`.order[data-order-id="${id}"] .status`, (s) => s.getAttribute('data-status'))
    .catch(() => null);
}

function before(list, a, b) {
  const i = list.indexOf(a);
  const j = list.indexOf(b);
  if (i < 0) fail(`no ${a} arrow in ${list.join(', ')}`);
  if (j < 0) fail(`no ${b} arrow in ${list.join(', ')}`);
  if (i >= j) fail(`${a} is drawn after ${b}: ${list.join(', ')}`);
}

async function awaitSaga(page, id, final, last) {
  await waitFor(`order ${id} to be ${final} with ${last}`, async () =>
    (await status(page, id)) === final && (await arrows(page, id)).some((a) => a.type === last));
  return arrows(page, id);
}

// A POST with any headers (Origin and Host included, which fetch would
// not let a page choose): returns the status.
function rawPost(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const faultRow = (service, name) =>
  `#faults .fault-service[data-service="${service}"] tr[data-fault="${name}"]`;

async function faultValue(page, service, name) {
  return page.$eval(faultRow(service, name), (tr) => tr.getAttribute('data-value')).catch(() => null);
}

// "true" or "false": whether the switch is away from its off value.
async function faultOn(page, service, name) {
  return page.$eval(faultRow(service, name), (tr) => tr.getAttribute('data-on')).catch(() => null);
}

// Sets (value) or clears (null) a switch with the panel's controls and
// waits until the panel lists the daemon's new value.
async function flip(page, service, name, value) {
  const row = faultRow(service, name);
  if (value === null) {
    await page.click(`${row} button.clear`);
  } else {
    await page.$eval(`${row} input`, (e, v) => { e.value = String(v); }, value);
    await page.click(`${row} button.set`);
  }
  await waitFor(`${service} ${name} to be ${value === null ? 'off' : value}`, async () => (value === null
    ? (await faultOn(page, service, name)) === 'false'
    : (await faultValue(page, service, name)) === String(value)));
}

// The fault-switch panel: pause payment-service, see an order wait for
// its payment while the rest of the shop goes on, clear it, see it end.
async function pauseAndResume(page, url, artifacts) {
  const daemons = (process.env.CONSOLE_SERVICES || '').split(',').map((e) => e.slice(0, e.indexOf('=')));
  // Every daemon's switches listed, each off.
  await waitFor('every daemon\'s switches', () => page.$$eval('#faults .fault-service[data-reachable="true"]',
    (boxes, n) => boxes.length === n, daemons.length));
  for (const d of daemons) {
    for (const name of ['pause', 'fail_next', 'crash_after_commit']) {
      if ((await faultOn(page, d, name)) !== 'false') fail(`${d} ${name} is not listed as off`);
    }
  }
  for (const name of ['payment_latency_ms', 'payment_decline_percent']) {
    if ((await faultOn(page, 'payment-service', name)) !== 'false') fail(`payment-service ${name} is not listed as off`);
  }

  // Only the console's own page may change a switch.
  const u = new URL(url + '/api/faults');
  const body = JSON.stringify({ service: 'payment-service', name: 'pause', value: 1 });
  const json = { 'Content-Type': 'application/json' };
  const refusals = [
    [{ ...json }, 403, 'no Origin'],
    [{ ...json, Origin: 'http://evil.example' }, 403, 'another site\'s Origin'],
    [{ ...json, Origin: `http://evil.example:${u.port}`, Host: `evil.example:${u.port}` }, 403, 'a rebound name'],
    [{ 'Content-Type': 'text/plain', Origin: u.origin }, 415, 'a form\'s content type'],
  ];
  for (const [headers, want, what] of refusals) {
    const got = await rawPost(u, headers, body);
    if (got !== want) fail(`a change with ${what} got ${got}, not ${want}`);
  }
  if ((await faultOn(page, 'payment-service', 'pause')) !== 'false') fail('a refused change paused payment-service');
  // The storefront's orders too: the console signs them as the customer
  // they name, so only its own page may place them.
  const orders = new URL(url + '/api/orders');
  const order = JSON.stringify({ customerId: 'c-foreign', customerEmail: 'c-foreign@example.com',
    items: [{ sku: 'mug-classic', quantity: 1 }], paymentToken: 'tok_visa' });
  for (const [headers, want, what] of refusals) {
    const got = await rawPost(orders, headers, order);
    if (got !== want) fail(`an order with ${what} got ${got}, not ${want}`);
  }
  const bad = await rawPost(u, { ...json, Origin: u.origin }, '{"service":"payment-service","name":"pause"}');
  if (bad !== 400) fail(`a change without a value got ${bad}`);

  await flip(page, 'payment-service', 'pause', 1);
  const paused = await place(page, { customer: 'c-paused', token: 'tok_visa', sku: 'mug-classic', quantity: 1 });
  // The others go on: inventory reserves, email sends its mail.
  await waitFor('inventory and email to react while payment is paused', async () =>
    (await arrows(page, paused)).some((x) => x.type === 'InventoryReserved') &&
    (await page.$(`.order[data-order-id="${paused}"] .email[data-template="order-received"]`)) !== null);
  // The switch is the daemon's own (its /metrics says so) ...
  const payment = (process.env.CONSOLE_SERVICES || '').split(',')
    .find((e) => e.startsWith('payment-service=')).slice('payment-service='.length);
  const metrics = await (await fetch(payment + '/metrics')).text();
  if (!/\nes_fault_pause 1\n/.test(metrics)) fail('payment-service\'s /metrics does not show es_fault_pause 1');
  // ... and the order waits for its payment (watched for 3 s, as
  // e2e.faults.pause does).
  await holdsFor(`order ${paused} PENDING with no payment arrow`, async () =>
    (await status(page, paused)) === 'PENDING' &&
    !(await arrows(page, paused)).some((x) => x.type.startsWith('Payment')), 3000);
  await (await page.$('#faults')).screenshot({ path: path.join(artifacts, 'console-faults.png') });
  let types;

  await flip(page, 'payment-service', 'pause', null);
  types = (await awaitSaga(page, paused, 'CONFIRMED', 'OrderConfirmed')).map((x) => x.type);
  before(types, 'InventoryReserved', 'OrderConfirmed');
  before(types, 'PaymentProcessed', 'OrderConfirmed');
  // Its saga's last events (the shipment and its mail) before what follows
  // counts the arrows drawn.
  await waitFor('the resumed order shipped', async () =>
    (await arrows(page, paused)).some((x) => x.type === 'ShipmentDelivered') &&
    (await page.$(`.order[data-order-id="${paused}"] .email[data-template="order-shipped"]`)) !== null);
  return paused;
}

async function main() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const artifacts = process.env.ARTIFACT_DIR || '.';
  fs.mkdirSync(artifacts, { recursive: true });
  let consoleProc = startConsole(port);
  let browser;
  const dialogs = [];
  const errors = [];
  try {
    await consoleUp(url);
    browser = await puppeteer.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1100 });
    page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url + '/', { waitUntil: 'domcontentloaded' });
    await waitFor('the catalog', () => page.$('#catalog input[data-sku="mug-classic"]'));
    await waitFor('the stream', () => page.$('#conn[data-state="live"]'));

    // A card that pays: the happy path.
    const visa = await place(page, { customer: 'c-visa', token: 'tok_visa', sku: 'mug-classic', quantity: 2 });
    let a = await awaitSaga(page, visa, 'CONFIRMED', 'OrderConfirmed');
    let types = a.map((x) => x.type);
    before(types, 'OrderPlaced', 'InventoryReserved');
    before(types, 'OrderPlaced', 'PaymentProcessed');
    before(types, 'InventoryReserved', 'OrderConfirmed');
    before(types, 'PaymentProcessed', 'OrderConfirmed');
    if (!/orders\/\d+@\d+/.test(a[0].label) || !/\+\d+ ms/.test(a[0].label)) fail(`label: ${a[0].label}`);
    await waitFor('the confirmation email', () =>
      page.$(`.order[data-order-id="${visa}"] .email[data-template="order-confirmed"]`));

    // A declined card: the payment fails, the order is cancelled and the
    // reservation made meanwhile is released (a compensation).
    const declined = await place(page, { customer: 'c-declined', token: 'tok_declined', sku: 'hoodie-eda', quantity: 1 });
    a = await awaitSaga(page, declined, 'CANCELLED', 'InventoryReleased');
    types = a.map((x) => x.type);
    before(types, 'OrderPlaced', 'PaymentFailed');
    before(types, 'PaymentFailed', 'OrderCancelled');
    before(types, 'OrderCancelled', 'InventoryReleased');
    before(types, 'InventoryReserved', 'InventoryReleased');
    if (types.includes('OrderConfirmed')) fail('a declined order shows OrderConfirmed');
    const released = a.find((x) => x.type === 'InventoryReleased');
    if (!released.cls.includes('compensation')) fail(`InventoryReleased is drawn as ${released.cls}`);
    const reason = await page.$eval(`.order[data-order-id="${declined}"] .reason`, (e) => e.textContent);
    if (reason !== 'PAYMENT_DECLINED') fail(`reason ${reason}`);

    // Markup in an event is text: no element made of it, no script run.
    const injected = await place(page, { customer: INJECTION, token: 'tok_visa', sku: 'sticker-pack', quantity: 1 });
    await waitFor('the injected customer', () => page.$eval(`.order[data-order-id="${injected}"] .customer`,
      (e, s) => e.textContent.includes(s), INJECTION).catch(() => false));

    // The poison message: shown as poison, as text.
    await waitFor('the poison message', () => page.$$eval('#poison li.poison .raw',
      (lis) => lis.some((li) => li.textContent.includes('this is not JSON'))));
    // ... and the dead letters the daemons made of it.
    await waitFor('a dead letter', () => page.$('#poison li.dead-letter'));
    await awaitSaga(page, injected, 'CONFIRMED', 'OrderConfirmed');
    const imgs = await page.$$eval('img', (l) => l.length);
    const pwned = await page.evaluate(() => window.pwned);
    if (imgs !== 0 || pwned !== undefined || dialogs.length) {
      fail(`markup from events ran: ${imgs} img, pwned=${pwned}, dialogs ${dialogs}`);
    }

    // The live panel: every daemon ready, the dead letters counted.
    const daemons = (process.env.CONSOLE_SERVICES || '').split(',').length;
    await waitFor('the panel', () => page.$$eval('#services li[data-ready="true"]',
      (l, n) => l.length === n, daemons));
    await waitFor('dead letters counted', () => page.$$eval('#dlq tr',
      (rows) => rows.some((r) => r.querySelector('td.count') && Number(r.querySelector('td.count').textContent) > 0)));

    // Consumer lag: every group's committed offsets, read from the broker
    // (the panel), and each daemon's own in its /metrics.
    // Each group has committed offsets on the orders topic (every daemon
    // reads it, but for order-service, which reads payments and inventory).
    await waitFor('the groups\' lag', () => page.$$eval('#lag tr[data-group]', (rows, n) => rows.length === n &&
      rows.every((r) => /^\d+$/.test(r.querySelector('td.count').textContent) &&
        r.nextElementSibling && r.nextElementSibling.classList.contains('detail') &&
        /(orders|payments) \d+/.test(r.nextElementSibling.textContent)), daemons));
    for (const entry of (process.env.CONSOLE_SERVICES || '').split(',')) {
      const base = entry.slice(entry.indexOf('=') + 1);
      await waitFor(`es_consumer_lag in ${base}/metrics`, async () =>
        /\nes_consumer_lag\{topic="[^"]+",partition="\d+"\} \d+\n/.test(await (await fetch(base + '/metrics')).text()));
    }

    // The fault switches, from the page.
    await pauseAndResume(page, url, artifacts);

    // Restart: kill the console, start it again; the page reconnects and
    // draws nothing twice (the console re-reads a tail of each partition).
    const all = async () => page.$$eval('g.arrow[data-type]', (gs) => gs.map((g) =>
      `${g.closest('.order').getAttribute('data-order-id')} ${g.getAttribute('data-topic')}@${g.getAttribute('data-offset')}`));
    const drawn = await all();
    const dropped = await page.evaluate(() => window.consoleStats.duplicates);
    consoleProc.kill('SIGKILL');
    await new Promise((r) => consoleProc.once('exit', r));
    await waitFor('the page to see the console go', () => page.$('#conn[data-state="reconnecting"]'));
    consoleProc = startConsole(port);
    await waitFor('the page to reconnect', () => page.$('#conn[data-state="live"]'));
    // Every event drawn comes again from the tail, and is dropped.
    await waitFor('the tail to be read again', () => page.evaluate(
      (d, n) => window.consoleStats.duplicates >= d + n, dropped, drawn.length));
    const after = await all();
    if (after.length !== drawn.length || new Set(after).size !== after.length) {
      fail(`after the restart ${after.length} arrows (${new Set(after).size} distinct), before ${drawn.length}`);
    }
    // And what happens after the restart is drawn.
    const later = await place(page, { customer: 'c-after', token: 'tok_visa', sku: 'mug-classic', quantity: 1 });
    await awaitSaga(page, later, 'CONFIRMED', 'OrderConfirmed');
    if (errors.length) fail(`errors on the page: ${errors.join('; ')}`);

    // The picture: the two sagas of the first orders, open.
    await page.$$eval('.order', (ds, keep) => ds.forEach((d) => {
      d.open = keep.includes(d.getAttribute('data-order-id'));
    }), [visa, declined]);
    await page.screenshot({ path: path.join(artifacts, 'console.png') });
    await browser.close();
    browser = null;
    // A stop is clean (and, in a sanitizer build, leaks nothing): exit 0.
    const exited = new Promise((r) => consoleProc.once('exit', (code, sig) => r({ code, sig })));
    consoleProc.kill('SIGTERM');
    const { code, sig } = await exited;
    if (code !== 0) fail(`the console exited with ${code === null ? sig : code} on SIGTERM`);
    console.log(`e2e.console: all checks passed; screenshot in ${path.join(artifacts, 'console.png')}`);
  } finally {
    if (browser) await browser.close();
    if (consoleProc.exitCode === null && consoleProc.signalCode === null) consoleProc.kill('SIGTERM');
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`e2e.console: FAILED: ${e.message}`);
  for (const l of logs) console.error(`---- console log\n${l.text}`);
  process.exit(1);
});
