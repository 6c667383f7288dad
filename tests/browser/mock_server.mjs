// mock_server.mjs — a stand-in for `ddpm serve` (docs/serve.md) with fake images, for developing the web page
// (src/ddpm/serve/web/index.html) without building the C++ server. Node's http and zlib modules only.
//   node tests/browser/mock_server.mjs [--port 8080] [--api-key KEY] [--step-ms 15] [--max-queue 16]
//   node tests/browser/mock_server.mjs --proxy http://127.0.0.1:8080 [--port 0]
// Prints `ddpm serve: listening on http://127.0.0.1:PORT` on stderr like the real server (--port 0: a free port).
// --proxy: serve the page from src/ddpm/serve/web/index.html as it is now and pass every other request to a real
// `ddpm serve` (Host and Origin rewritten to it): try an edited page on the real server without rebuilding.
// It checks what the page sends (unknown fields, types, base64 PNGs: their size and channel count) as the contract
// says, so a page bug shows as a 400 here too. Not a model: the images are synthetic shapes that sharpen out of noise.
import http from 'node:http';
import zlib from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const PAGE = path.join(here, '../../src/ddpm/serve/web/index.html');
const arg = (name, def) => { const i = process.argv.indexOf('--' + name); return i > 0 ? process.argv[i + 1] : def; };
const PORT = Number(arg('port', 8080)), KEY = arg('api-key', ''), STEP_MS = Number(arg('step-ms', 15));
const MAX_QUEUE = Number(arg('max-queue', 16)), MAX_NUM = 64, MAX_STEPS = 1000, PROXY = arg('proxy', '');
// The real server's Content-Security-Policy of the page.
const CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'";

// ---------- PNG ----------
const CRC = new Uint32Array(256).map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
const crc32 = (b) => { let c = ~0; for (const x of b) c = CRC[(c ^ x) & 255] ^ (c >>> 8); return ~c >>> 0; };
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length); out.writeUInt32BE(data.length, 0); out.write(type, 4, 'ascii');
  data.copy(out, 8); out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length); return out;
}
function png(w, h, ch, px) {  // px: Uint8Array w*h*ch
  const raw = Buffer.alloc((w * ch + 1) * h);
  for (let y = 0; y < h; y++) Buffer.from(px.buffer, px.byteOffset + y * w * ch, w * ch).copy(raw, y * (w * ch + 1) + 1);
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = ch === 1 ? 0 : 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]).toString('base64');
}
// base64 PNG (or data URL) -> {w, h, ch, px} (8-bit, no interlace, filter 0 only: what the page's encoder writes).
function readPng(field, s) {
  if (typeof s !== 'string') throw new Error(`field '${field}': expected a base64 PNG string`);
  const b = Buffer.from(s.replace(/^data:image\/png;base64,/, ''), 'base64');
  if (b.length < 33 || b.readUInt32BE(0) !== 0x89504e47) throw new Error(`field '${field}': not a PNG`);
  let off = 8, w = 0, h = 0, ct = -1; const idat = [];
  while (off + 8 <= b.length) {
    const len = b.readUInt32BE(off), type = b.toString('ascii', off + 4, off + 8), data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') { w = data.readUInt32BE(0); h = data.readUInt32BE(4); ct = data[9]; if (data[8] !== 8) throw new Error(`field '${field}': not 8-bit`); }
    if (type === 'IDAT') idat.push(data);
    if (type === 'IEND') break;
    off += 12 + len;
  }
  const ch = {0: 1, 2: 3, 4: 2, 6: 4}[ct];
  if (!ch) throw new Error(`field '${field}': unsupported PNG colour type ${ct}`);
  let raw; try { raw = zlib.inflateSync(Buffer.concat(idat)); } catch { throw new Error(`field '${field}': truncated PNG`); }
  if (raw.length !== (w * ch + 1) * h) throw new Error(`field '${field}': truncated PNG`);
  const px = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) { if (raw[y * (w * ch + 1)] !== 0) throw new Error(`field '${field}': mock reads filter 0 only`); raw.copy(px, y * w * ch, y * (w * ch + 1) + 1, (y + 1) * (w * ch + 1)); }
  return {w, h, ch, px};
}

// ---------- fake images ----------
function rng(seed) { let s = (seed >>> 0) || 1; return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; }; }
function shape(seed, N = 28) {  // a soft blob with a stripe: looks like "something"
  const r = rng(seed * 7919 + 17), cx = N * (0.35 + 0.3 * r()), cy = N * (0.35 + 0.3 * r()), rx = N * (0.15 + 0.2 * r()), ry = N * (0.15 + 0.25 * r()), st = r() * 6;
  const px = new Uint8Array(N * N);
  for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) {
    const d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
    px[y * N + x] = d < 1 ? Math.round(150 + 90 * Math.sin(x / 2 + st) * Math.cos(y / 3)) : 0;
  }
  return px;
}
function noisy(px, t, seed) {  // t = 1: pure noise, 0: the image
  const r = rng(seed + 99991), out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = Math.max(0, Math.min(255, Math.round((1 - t) * px[i] + t * 255 * r())));
  return out;
}
function grid(list, N = 28, pad = 2) {
  const cols = Math.ceil(Math.sqrt(list.length)), rows = Math.ceil(list.length / cols);
  const W = cols * (N + pad) + pad, H = rows * (N + pad) + pad, px = new Uint8Array(W * H);
  list.forEach((im, k) => { const ox = pad + (k % cols) * (N + pad), oy = pad + Math.floor(k / cols) * (N + pad);
    for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) px[(oy + y) * W + ox + x] = im[y * N + x]; });
  return png(W, H, 1, px);
}

// ---------- models and jobs ----------
const NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const MODELS = [
  {id: 'fmnist-small', image_size: 28, channels: 1, classes: 0, class_names: null, prediction: 'eps', parameters: 1947329, step: 2566, schedule: 'linear', timesteps: 1000},
  {id: 'fmnist-small-cond', image_size: 28, channels: 1, classes: 10, class_names: NAMES, prediction: 'eps', parameters: 1950000, step: 3000, schedule: 'linear', timesteps: 1000},
];
const SAMPLERS = ['ddpm', 'ddim', 'dpm++2m', 'dpm++3m', 'euler', 'heun'];
const TASKS = ['sample', 'inpaint', 'upscale', 'denoise', 'edit', 'interpolate'];
const DEFAULT_STEPS = {ddpm: 1000, ddim: 50, euler: 50, 'dpm++2m': 20, 'dpm++3m': 20, heun: 18};
const FIELDS = {
  common: ['model', 'task', 'num', 'seed', 'class', 'guidance', 'preview_every', 'steps'],
  sample: ['sampler', 'eta', 'spacing', 'variance'],
  inpaint: ['image', 'data_index', 'mask', 'mask_shape', 'method', 'jump_length', 'resample'],
  upscale: ['image', 'data_index', 'method', 'factor'], denoise: ['image', 'data_index', 'sigma', 'add_noise'],
  edit: ['image', 'data_index', 'mask', 'strength'], interpolate: ['image', 'image_b', 'frames'],
};
const jobs = new Map(); const queue = []; let running = null, nextId = 1;

class Bad extends Error {}
function validate(b) {
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new Bad('the body must be a JSON object');
  const task = b.task ?? 'sample';
  if (!TASKS.includes(task)) throw new Bad(`field 'task': unknown task '${task}'`);
  for (const k of Object.keys(b)) if (!FIELDS.common.includes(k) && !FIELDS[task].includes(k)) throw new Bad(`unknown field '${k}' for task '${task}'`);
  const m = b.model === undefined ? MODELS[0] : MODELS.find((x) => x.id === b.model);
  if (!m) throw new Bad(`field 'model': no model '${b.model}'`);
  const int = (k, lo, hi) => { if (b[k] !== undefined && (!Number.isInteger(b[k]) || b[k] < lo || b[k] > hi)) throw new Bad(`field '${k}': expected an integer in [${lo}, ${hi}]`); };
  const num = (k, lo, hi) => { if (b[k] !== undefined && (typeof b[k] !== 'number' || b[k] < lo || b[k] > hi)) throw new Bad(`field '${k}': expected a number in [${lo}, ${hi}]`); };
  int('num', 1, MAX_NUM); int('seed', 0, 2 ** 32 - 1); int('steps', 0, MAX_STEPS); int('preview_every', 0, 1e6);
  num('guidance', 0, 100); num('eta', 0, 1); num('sigma', 0, 1); num('add_noise', 0, 1); num('strength', 1e-9, 1);
  int('factor', 1, 28); int('frames', 2, 64); int('data_index', 0, 9999);
  if (b.class !== undefined) { if (!m.classes) throw new Bad(`field 'class': model '${m.id}' is unconditional`); int('class', 0, m.classes - 1); }
  if (b.sampler !== undefined && !SAMPLERS.includes(b.sampler)) throw new Bad(`field 'sampler': unknown sampler '${b.sampler}'`);
  const req = {model: m.id, task, num: b.num ?? (task === 'sample' ? 64 : 1), seed: b.seed ?? 0, ...b};
  const inputs = [];
  const img = (k, side) => { const p = readPng(k, b[k]); if (p.ch !== m.channels) throw new Bad(`field '${k}': ${p.ch}-channel image for a ${m.channels}-channel model`);
    if (p.w !== side || p.h !== side) throw new Bad(`field '${k}': the image is ${p.w}x${p.h}, the model needs ${side}x${side}`); return p; };
  try {
    if (task !== 'sample') {
      if (b.image === undefined && b.data_index === undefined) throw new Bad("field 'image': required (or 'data_index')");
      if (b.image !== undefined && b.data_index !== undefined) throw new Bad("fields 'image' and 'data_index' exclude each other");
      if (task === 'upscale') { if (!b.factor) throw new Bad("field 'factor': required"); if (m.image_size % b.factor) throw new Bad("field 'factor': must divide the model's size"); }
      const side = task === 'upscale' ? m.image_size / b.factor : m.image_size;
      if (b.image !== undefined) { const p = img('image', side); inputs.push(png(p.w, p.h, p.ch, p.px)); }
      else inputs.push(png(28, 28, 1, noisy(shape(1000 + b.data_index), 0.3, 5)));
      if (task === 'interpolate') { if (b.image_b === undefined) throw new Bad("field 'image_b': required"); const p = img('image_b', m.image_size); inputs.push(png(p.w, p.h, p.ch, p.px)); }
      if (task === 'inpaint' && b.mask === undefined && b.mask_shape === undefined) throw new Bad("field 'mask': required (or 'mask_shape')");
      if (b.mask !== undefined) { const p = readPng('mask', b.mask); if (p.w !== m.image_size || p.h !== m.image_size) throw new Bad(`field 'mask': the mask is ${p.w}x${p.h}, the model needs ${m.image_size}x${m.image_size}`);
        const on = p.px.filter((v, i) => i % p.ch === 0 && v >= 128).length; if (on === 0 || on === p.w * p.h) throw new Bad("field 'mask': keeps every pixel or none"); }
      if (task === 'edit' && b.strength === undefined) throw new Bad("field 'strength': required");
      if (task === 'denoise' && b.sigma !== undefined && b.data_index !== undefined) throw new Bad("field 'sigma': only with 'image' (use 'add_noise' with 'data_index')");
    }
  } catch (e) { if (e instanceof Bad) throw e; throw new Bad(e.message); }
  const steps = b.steps || (task === 'sample' ? DEFAULT_STEPS[b.sampler ?? 'ddpm'] : task === 'edit' ? Math.round(100 * b.strength) : task === 'upscale' || task === 'inpaint' ? 100 : 50);
  return {req, steps, inputs};
}
function command(j) {
  const r = j.request, verb = r.task === 'sample' ? 'sample' : r.task;
  let c = `ddpm ${verb} --checkpoint models/${r.model}.safetensors`;
  for (const [k, v] of Object.entries(r)) {
    if (['model', 'task', 'image', 'image_b', 'mask', 'preview_every'].includes(k)) continue;
    if (k === 'data_index') { c += ` --data fashion-mnist@test --index ${v}`; continue; }
    c += ` --${k.replace(/_/g, '-')} ${v}`;
  }
  if (r.image) c += r.task === 'interpolate' ? ' --a a.png --b b.png' : ' --image input.png';
  if (r.mask) c += ' --mask mask.png';
  return c + ` --out ${r.task === 'sample' ? 'samples' : r.task}.png`;
}
const view = (j) => { const o = {...j}; delete o.subs; delete o.timer; delete o._inputs; delete o._steps; delete o.cancel; if (o.status !== 'queued') delete o.queue_position; return o; };
function send(j, event, data) { for (const res of j.subs) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); }
function finish(j, status) {
  j.status = status; j.finished = Date.now() / 1000;
  send(j, 'status', {status}); send(j, 'result', view(j)); for (const res of j.subs) res.end(); j.subs.clear();
  running = null; renumber(); setImmediate(work);
}
function renumber() { queue.forEach((j, i) => { if (j.queue_position !== i) { j.queue_position = i; send(j, 'status', {status: 'queued', queue_position: i}); } }); }
function work() {
  if (running || !queue.length) return;
  const j = queue.shift(); running = j; renumber();
  j.status = 'running'; j.started = Date.now() / 1000; send(j, 'status', {status: 'running'});
  const n = j.task === 'interpolate' ? (j.request.frames ?? 8) : j.request.num, steps = j._steps;
  const every = j.request.preview_every ?? Math.max(1, Math.round(steps / 20));
  const finals = Array.from({length: n}, (_, i) => shape(j.request.seed * 131 + i));
  let step = 0;
  const tick = () => {
    if (j.cancel) return finish(j, 'cancelled');
    step++; j.progress = {step, steps, images_done: 0, images: n};
    send(j, 'progress', j.progress);
    if (every && (step % every === 0 || step === steps)) send(j, 'preview', {step, steps, image: grid(finals.slice(0, 16).map((f, i) => noisy(f, 1 - step / steps, step * 31 + i)))});
    if (step < steps) { j.timer = setTimeout(tick, STEP_MS); return; }
    j.progress = {step, steps, images_done: n, images: n};
    const imgs = finals.map((f) => png(28, 28, 1, f));
    j.result = {images: imgs, grid: grid(finals), nfe: steps, seconds: (Date.now() / 1000 - j.started), command: command(j)};
    if (j.task !== 'sample') j.result.inputs = j._inputs;
    if (j.request.data_index !== undefined) j.result.metrics = {psnr: 18 + 6 * rng(j.request.seed + 3)(), psnr_baseline: 12.5, psnr_missing: 11.2};
    finish(j, 'completed');
  };
  j.timer = setTimeout(tick, STEP_MS);
}

// ---------- HTTP ----------
function json(res, code, obj) { const b = JSON.stringify(obj); res.writeHead(code, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b)}); res.end(b); }
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x'), p = url.pathname;
  if (p === '/health') return json(res, 200, {status: 'ok'});
  // The page stays open like /health (a browser cannot send the key when it navigates); docs/serve.md does not say so.
  if (req.method === 'GET' && p === '/') { res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP}); return res.end(fs.readFileSync(PAGE)); }
  if (PROXY) {
    const t = new URL(PROXY), headers = {...req.headers, host: t.host};
    if (headers.origin) headers.origin = t.origin;
    const up = http.request({host: t.hostname, port: t.port, method: req.method, path: req.url, headers}, (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', (e) => json(res, 502, {error: 'proxy: ' + e.message}));
    res.on('close', () => up.destroy());
    return req.pipe(up);
  }
  if (KEY && req.headers.authorization !== 'Bearer ' + KEY) return json(res, 401, {error: 'missing or wrong API key (Authorization: Bearer KEY)'});
  if (req.method === 'GET' && p === '/v1/models') return json(res, 200, {models: MODELS, samplers: SAMPLERS, tasks: TASKS, data: {spec: 'fashion-mnist@test', size: 10000},
    limits: {max_num: MAX_NUM, max_steps: MAX_STEPS, max_queue: MAX_QUEUE, max_frames: 32, max_body_mb: 8}});
  let m;
  if ((m = p.match(/^\/v1\/data\/(\d+)$/)) && req.method === 'GET') {
    const i = Number(m[1]); if (i >= 10000) return json(res, 404, {error: `data index ${i} out of range (10000 images)`});
    const b = Buffer.from(png(28, 28, 1, shape(1000 + i)), 'base64'); res.writeHead(200, {'Content-Type': 'image/png', 'Content-Length': b.length}); return res.end(b);
  }
  if (p === '/v1/jobs' && req.method === 'GET') return json(res, 200, {jobs: [...jobs.values()].reverse().map((j) => ({id: j.id, status: j.status, task: j.task, model: j.model, created: j.created}))});
  if (p === '/v1/jobs' && req.method === 'POST') {
    const parts = []; req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      let body; try { body = JSON.parse(Buffer.concat(parts).toString('utf8')); } catch { return json(res, 400, {error: 'the body is not valid JSON'}); }
      let v; try { v = validate(body); } catch (e) { return json(res, 400, {error: e.message}); }
      if (queue.length >= MAX_QUEUE) return json(res, 429, {error: `the queue is full (${MAX_QUEUE} jobs); try again later`});
      const id = 'j' + nextId++;
      const j = {id, status: 'queued', task: v.req.task, model: v.req.model, queue_position: queue.length, created: Date.now() / 1000,
                 progress: {step: 0, steps: v.steps, images_done: 0, images: v.req.task === 'interpolate' ? (v.req.frames ?? 8) : v.req.num},
                 request: v.req, subs: new Set(), _inputs: v.inputs, _steps: v.steps};
      jobs.set(id, j); queue.push(j); json(res, 202, {id, status: 'queued', queue_position: j.queue_position}); setImmediate(work);
    });
    return;
  }
  if ((m = p.match(/^\/v1\/jobs\/([^/]+)(\/events|\/cancel)?$/))) {
    const j = jobs.get(m[1]); if (!j) return json(res, 404, {error: `no job '${m[1]}'`});
    if (!m[2] && req.method === 'GET') return json(res, 200, view(j));
    if (m[2] === '/cancel' && req.method === 'POST') {
      if (j.status === 'queued') { queue.splice(queue.indexOf(j), 1); j.status = 'cancelled'; j.finished = Date.now() / 1000; send(j, 'status', {status: 'cancelled'}); send(j, 'result', view(j)); for (const r of j.subs) r.end(); j.subs.clear(); renumber(); }
      else if (j.status === 'running') j.cancel = true;
      return json(res, 200, view(j));
    }
    if (m[2] === '/events' && req.method === 'GET') {
      res.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive'});
      res.write(`event: status\ndata: ${JSON.stringify({status: j.status, queue_position: j.status === 'queued' ? j.queue_position : undefined})}\n\n`);
      if (['completed', 'failed', 'cancelled'].includes(j.status)) { res.write(`event: result\ndata: ${JSON.stringify(view(j))}\n\n`); return res.end(); }
      j.subs.add(res); const hb = setInterval(() => res.write(': heartbeat\n\n'), 5000);
      req.on('close', () => { clearInterval(hb); j.subs.delete(res); });
      return;
    }
  }
  json(res, 404, {error: `no route ${req.method} ${p}`});
});
server.listen(PORT, '127.0.0.1', () => process.stderr.write(`ddpm serve: listening on http://127.0.0.1:${server.address().port}\n`));
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { server.close(); process.exit(0); });
