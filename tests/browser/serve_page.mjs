// serve_page.mjs — the browser test of the `ddpm serve` web page: Debian's chromium driven by playwright-core.
//   node tests/browser/serve_page.mjs URL        (tests/test_serve_browser.sh starts the server and calls this)
// Env: OUT_DIR (screenshots, default /tmp/ddpm-browser), CHROMIUM (default /usr/bin/chromium).
// Checks: the page loads without console errors; a queued generate job (dpm++2m, 10 steps, 4 images) streams at
// least two different x̂_0 previews and a moving progress bar, then shows the 4-image grid and a `ddpm sample`
// command; a long job is cancelled while running (from the history panel, and with #cancel-btn); Restore: dataset
// image 0, a mask stroke drawn with the mouse, inpaint with ddnm in 10 steps -> results and PSNR; a 400 is shown
// in #error. Writes generate.png and restore.png. Every wait is bounded; the whole run is under 3 minutes.
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const URL = process.argv[2];
if (!URL) { console.error('usage: node serve_page.mjs URL'); process.exit(2); }
const OUT = process.env.OUT_DIR || '/tmp/ddpm-browser';
const T0 = Date.now();
fs.mkdirSync(OUT, {recursive: true});
for (const f of fs.readdirSync(OUT)) if (/^failed-.*\.png$/.test(f)) fs.rmSync(path.join(OUT, f));
let pass = 0, fail = 0;
const ok = (n) => { pass++; console.log(`ok   - ${n}`); };
const bad = (n, why) => { fail++; console.log(`FAIL - ${n}${why ? ': ' + why : ''}`); };
const check = (n, cond, why) => (cond ? ok(n) : bad(n, why));
const watchdog = setTimeout(() => { console.log('FAIL - the whole test ran past 175 s'); process.exit(1); }, 175_000);

const browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']});
const page = await browser.newPage({viewport: {width: 1440, height: 900}, colorScheme: 'dark'});
page.setDefaultTimeout(20_000);
const consoleErrors = [];
let collectErrors = true;
page.on('console', (m) => { if (m.type() === 'error' && collectErrors) consoleErrors.push(m.text()); });
page.on('pageerror', (e) => { if (collectErrors) consoleErrors.push('pageerror: ' + e.message); });

// A named step: a thrown error (a timeout) fails it and the test goes on with the next step.
async function step(name, fn) {
  try { await fn(); } catch (e) {
    bad(name, String(e.message || e).split('\n')[0]);
    const f = path.join(OUT, `failed-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await page.screenshot({path: f}).then(() => console.log(`# screenshot of the failure: ${f}`), () => {});
  }
}
const attr = (sel, a) => page.getAttribute(sel, a);
const firstJobId = async () => page.getAttribute('#history li[data-id]', 'data-id');
async function setGenerate(sampler, steps, num) {
  await page.selectOption('#sampler', sampler);
  await page.fill('#steps', String(steps));
  await page.fill('#num', String(num));
}
async function submitGenerate(prevCount) {
  await page.click('#generate-btn');
  await page.waitForFunction((n) => document.querySelectorAll('#history li[data-id]').length > n, prevCount, {timeout: 10_000});
  return firstJobId();
}
const historyCount = () => page.evaluate(() => document.querySelectorAll('#history li[data-id]').length);
const jobStatus = (id) => page.getAttribute(`#history li[data-id="${id}"]`, 'data-status');
const waitStatus = (id, status, timeout = 30_000) =>
  page.waitForSelector(`#history li[data-id="${id}"][data-status="${status}"]`, {state: 'attached', timeout});

await step('page loads', async () => {
  const res = await page.goto(URL + '/', {waitUntil: 'load', timeout: 20_000});
  check('GET / is 200 text/html', res.status() === 200 && /text\/html/.test(res.headers()['content-type'] || ''), `${res.status()} ${res.headers()['content-type']}`);
  await page.waitForSelector('#server-status[data-state="ok"]', {timeout: 30_000});
  const models = await page.$$eval('#model option', (o) => o.map((x) => x.value));
  check('models listed in the header', models.length >= 1 && models.includes('fmnist-small'), JSON.stringify(models));
  const samplers = await page.$$eval('#sampler option', (o) => o.map((x) => x.value));
  check('samplers listed', samplers.includes('dpm++2m') && samplers.includes('ddpm'), JSON.stringify(samplers));
  check('class and guidance hidden for an unconditional model', await page.isHidden('#class-row') && await page.isHidden('#guidance-row'));
  check('eta hidden unless ddim', await page.isHidden('#eta-row'));
  await page.selectOption('#sampler', 'ddim');
  check('eta shown for ddim', await page.isVisible('#eta-row'));
});

let j1, j2;
await step('long job runs', async () => {
  await setGenerate('ddpm', 1000, 64);
  j1 = await submitGenerate(await historyCount());
  await waitStatus(j1, 'running', 30_000);
  await page.waitForFunction(() => Number(document.querySelector('#progress').dataset.step) >= 1, null, {timeout: 30_000});
  ok(`long job ${j1} running, progress ${await attr('#progress', 'data-step')}/${await attr('#progress', 'data-steps')}`);
});

await step('generate (queued behind the long job)', async () => {
  await setGenerate('dpm++2m', 10, 4);
  j2 = await submitGenerate(await historyCount());
  check(`job ${j2} queued behind ${j1}`, (await attr('#job-status', 'data-status')) === 'queued', await attr('#job-status', 'data-status'));
  // Record every preview src and progress value the page shows from now on.
  await page.evaluate(() => {
    window.__seen = {previews: new Set(), progress: new Set()};
    const img = document.querySelector('#preview-img'), pr = document.querySelector('#progress');
    new MutationObserver(() => { const s = img.getAttribute('src'); if (s) window.__seen.previews.add(s); }).observe(img, {attributes: true, attributeFilter: ['src']});
    new MutationObserver(() => window.__seen.progress.add(pr.getAttribute('aria-valuenow'))).observe(pr, {attributes: true, attributeFilter: ['aria-valuenow']});
  });
  await page.click(`#history li[data-id="${j1}"] .h-cancel`);
  await waitStatus(j1, 'cancelled', 30_000);
  ok(`${j1} cancelled from the history panel while running`);
  await waitStatus(j2, 'completed', 60_000);
  await page.waitForSelector('#result-grid a.tile img', {state: 'visible', timeout: 10_000});
  await page.waitForFunction(() => [...document.querySelectorAll('#result-grid img')].every((i) => i.complete && i.naturalWidth > 0), null, {timeout: 10_000});
  const tiles = await page.$$eval('#result-grid a.tile', (as) => as.map((a) => [a.getAttribute('download'), a.href.slice(0, 22), a.firstChild.naturalWidth]));
  check('the grid shows 4 downloadable images', tiles.length === 4 && tiles.every(([d, h, w]) => d && d.endsWith('.png') && h === 'data:image/png;base64,' && w === 28), JSON.stringify(tiles));
  const seen = await page.evaluate(() => ({previews: window.__seen.previews.size, progress: [...window.__seen.progress]}));
  check('at least two different x̂_0 previews shown', seen.previews >= 2, `${seen.previews} distinct`);
  const moving = seen.progress.map(Number).filter((v) => v > 0 && v < 100);
  check('the progress bar moved', new Set(seen.progress).size >= 3 && moving.length >= 1, JSON.stringify(seen.progress));
  const cmd = (await page.textContent('#command')) || '';
  check('the command line starts with `ddpm sample`', cmd.startsWith('ddpm sample'), cmd.slice(0, 120));
  check('the command has the sampler and the steps', /dpm\+\+2m/.test(cmd) && /--steps 10\b/.test(cmd), cmd);
  const stats = (await page.textContent('#job-stats')) || '';
  check('nfe and seconds shown', /nfe \d+/.test(stats) && /\d s\b/.test(stats), stats);
  check('download-grid link', ((await attr('#download-grid', 'href')) || '').startsWith('data:image/png;base64,'));
  check('a history thumbnail for the finished job', ((await attr(`#history li[data-id="${j2}"] .h-thumb`, 'src')) || '').startsWith('data:image/png'));
  await page.screenshot({path: path.join(OUT, 'generate.png')});
});

await step('view a job from the history', async () => {
  await page.click(`#history li[data-id="${j1}"] .h-main`);
  check('clicking a history entry shows that job', (await attr('#job-status', 'data-status')) === 'cancelled' && (await page.textContent('#job-title')).startsWith(j1),
    `${await attr('#job-status', 'data-status')} ${await page.textContent('#job-title')}`);
});

await step('cancel a running job with #cancel-btn', async () => {
  await setGenerate('ddpm', 1000, 64);
  const j3 = await submitGenerate(await historyCount());
  await page.waitForSelector('#job-status[data-status="running"]', {timeout: 30_000});
  check('#cancel-btn enabled while running', await page.isEnabled('#cancel-btn'));
  const t = Date.now();
  await page.click('#cancel-btn');
  await page.waitForSelector('#job-status[data-status="cancelled"]', {timeout: 30_000});
  check(`${j3} cancelled while running (${((Date.now() - t) / 1000).toFixed(1)} s)`, (await jobStatus(j3)) === 'cancelled', await jobStatus(j3));
  check('#cancel-btn disabled once cancelled', await page.isDisabled('#cancel-btn'));
});

await step('restore: inpaint dataset image 0', async () => {
  await page.click('#restore-tab');
  check('restore panel shown', await page.isVisible('#restore-panel') && await page.isHidden('#generate-panel'));
  await page.selectOption('#task', 'inpaint');
  await page.check('#src-data');
  await page.fill('#data-index', '0');
  await page.dispatchEvent('#data-index', 'change');
  await page.waitForSelector('#source-canvas[data-loaded="1"]', {state: 'attached', timeout: 15_000});
  ok('dataset image 0 shown');
  await page.fill('#brush-size', '5');
  const box = await page.locator('#mask-canvas').boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.45);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + box.width * (0.25 + 0.5 * i / 12), box.y + box.height * (0.45 + 0.1 * Math.sin(i)));
  await page.mouse.up();
  const painted = await page.evaluate(() => { const c = document.querySelector('#mask-canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (c.width * c.height); });
  check('the mouse stroke painted the mask', painted > 0.02 && painted < 0.6, painted.toFixed(3));
  await page.selectOption('#method', 'ddnm');
  await page.fill('#r-steps', '10');
  await page.fill('#r-num', '2');
  const before = await historyCount();
  await page.click('#restore-btn');
  await page.waitForFunction((n) => document.querySelectorAll('#history li[data-id]').length > n, before, {timeout: 10_000});
  const j4 = await firstJobId();
  await waitStatus(j4, 'completed', 60_000);
  await page.waitForSelector('#restore-results img', {state: 'visible', timeout: 10_000});
  const cols = await page.$$eval('#restore-results .rcol', (cs) => cs.map((c) => [c.querySelector('h4').textContent, c.querySelectorAll('img').length]));
  check('degraded input and results side by side', cols.length >= 2 && cols[0][1] >= 1 && cols.some(([h, n]) => /Results/.test(h) && n === 2), JSON.stringify(cols));
  const psnr = (await page.textContent('#psnr').catch(() => '')) || '';
  check('PSNR shown', /PSNR\s*[\d.]+ dB/.test(psnr) && /baseline\s*[\d.]+ dB/.test(psnr), psnr);
  const cmd = (await page.textContent('#command')) || '';
  check('the command line starts with `ddpm inpaint`', cmd.startsWith('ddpm inpaint'), cmd.slice(0, 120));
  await page.screenshot({path: path.join(OUT, 'restore.png')});
});

check('no console errors', consoleErrors.length === 0, consoleErrors.slice(0, 5).join(' | '));

await step('a 400 is shown in #error', async () => {
  collectErrors = false;  // the browser logs the 400 itself
  await page.click('#generate-tab');
  await setGenerate('dpm++2m', 10, 100000);
  await page.click('#generate-btn');
  await page.waitForSelector('#generate-panel #error:not([hidden])', {timeout: 10_000});
  const msg = (await page.textContent('#error')) || '';
  check('the error names the field', /num/.test(msg), msg);
});

clearTimeout(watchdog);
await browser.close();
console.log(`${fail ? 'FAIL' : 'PASS'}: ${pass} passed, ${fail} failed in ${((Date.now() - T0) / 1000).toFixed(1)} s; screenshots in ${OUT}`);
process.exit(fail ? 1 : 0);
