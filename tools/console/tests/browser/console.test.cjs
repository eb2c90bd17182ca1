// e2e.console's browser half (run by it_console.c with a shop running):
// starts eventshop-console, opens its page in Debian's Chromium (headless,
// through puppeteer-core), places a tok_visa and a tok_declined order
// through the page's form and checks each diagram's arrows, in causal
// order, and final status; places an order whose customerId is markup and
// checks it shows as text; checks the poison message shows as poison;
// kills the console (SIGKILL), starts it again and checks the page
// resumes without drawing an arrow twice. Saves a screenshot in
// ARTIFACT_DIR. Exit status 0 when all holds.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
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
