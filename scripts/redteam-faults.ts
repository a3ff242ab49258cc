/**
 * Re-runs the red-team fault cases of issue 18 that concern the run directory, resume, checkpoints and the Hub,
 * and prints how many were tried and how many were handled cleanly. Not a test (it takes a few minutes): run it
 * with `node --import tsx scripts/redteam-faults.ts [--only resume,kills,hub,push,sizes]`.
 *
 * Clean means: the command either succeeds with the right result, or fails within its time bound with one line
 * naming the file / field / repo (no TypeError, no stack, no token), leaving nothing half-written behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { hubPull } from '../src/hub/pull.js';
import { hubPush } from '../src/hub/push.js';
import { HubError } from '../src/hub/hub-error.js';
import { listCheckpoints } from '../src/train/checkpoint.js';
import { gitBlobSha1, startMockHub, writeTinyAdapterDir, writeTinyModelDir, listFilesRecursive, type MockHub } from '../test/helpers/hub-server.js';
import { makeTinyTrainer, snapshot } from '../test/helpers/train-setup.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-tune-redteam-'));
let n = 0;
const dir = (tag: string): string => {
  const d = path.join(tmp, `${tag}-${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

interface Outcome { group: string; name: string; clean: boolean; detail: string }
const outcomes: Outcome[] = [];
function record(group: string, name: string, clean: boolean, detail: string): void {
  outcomes.push({ group, name, clean, detail });
  process.stderr.write(`${clean ? 'clean' : 'NOT CLEAN'}  ${group}: ${name}${clean ? '' : `: ${detail}`}\n`);
}

const oneLine = (m: string): boolean => !/[\r\n]/.test(m) && !/\n\s+at /.test(m);

// ---------------------------------------------------------------- resume states
async function resumeStates(): Promise<void> {
  const good = dir('resume-src');
  await makeTinyTrainer({ runDir: good, steps: 2, checkpointEvery: 2 }).trainer.run();
  const ck = path.join(good, 'checkpoints', 'step-000002');
  const state = JSON.parse(fs.readFileSync(path.join(ck, 'trainer-state.json'), 'utf8')) as Record<string, unknown>;
  const fields: string[] = ['format', 'version', 'step', 'content', 'params', 'trainable', 'optimizer', 'optimizer.step', 'optimizer.steps', 'data', 'data.epoch',
    'data.index', 'data.seed', 'rng', 'rng.forward', 'rng.forward.s', 'routers', 'lr', 'tokensSeen', 'elapsedS', 'tokensProcessed'];
  const values: [string, unknown][] = [['missing', undefined], ['"abc"', 'abc'], ['-3', -3], ['null', null], ['[]', []]];
  const set = (o: Record<string, unknown>, p: string, v: unknown): void => {
    const parts = p.split('.');
    let cur = o;
    for (const k of parts.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
    if (v === undefined) delete cur[parts[parts.length - 1]!];
    else cur[parts[parts.length - 1]!] = v;
  };
  const cases: [string, (d: string) => void][] = [];
  for (const f of fields) for (const [vn, v] of values.slice(0, f.includes('.') ? 3 : 2)) {
    cases.push([`${f} = ${vn}`, (d) => {
      const s = structuredClone(state);
      set(s, f, v);
      fs.writeFileSync(path.join(d, 'checkpoints', 'step-000002', 'trainer-state.json'), JSON.stringify(s));
    }]);
  }
  const file = (name: string, edit: (p: string) => void): [string, (d: string) => void] => [name, (d) => edit(path.join(d, 'checkpoints', 'step-000002'))];
  cases.push(
    file('trainer-state.json truncated', (c) => fs.writeFileSync(path.join(c, 'trainer-state.json'), '{"format": "moe-tune-tra')),
    file('trainer-state.json empty', (c) => fs.writeFileSync(path.join(c, 'trainer-state.json'), '')),
    file('params.safetensors missing', (c) => fs.rmSync(path.join(c, 'params.safetensors'))),
    file('optimizer.safetensors missing', (c) => fs.rmSync(path.join(c, 'optimizer.safetensors'))),
    file('params.safetensors truncated', (c) => fs.truncateSync(path.join(c, 'params.safetensors'), 100)),
    file('optimizer.safetensors truncated', (c) => fs.truncateSync(path.join(c, 'optimizer.safetensors'), 50)),
    file('params.safetensors a directory', (c) => { fs.rmSync(path.join(c, 'params.safetensors')); fs.mkdirSync(path.join(c, 'params.safetensors')); }),
  );
  for (const [name, mutate] of cases) {
    const d = dir('resume');
    fs.cpSync(good, d, { recursive: true });
    mutate(d);
    const warnings: string[] = [];
    const { trainer } = makeTinyTrainer({ runDir: d, steps: 4, checkpointEvery: 2, onWarning: (l) => warnings.push(l) });
    try {
      const step = trainer.resume();
      // accepted: only a harmless change may be (the step must be what the checkpoint says, or 0 after a warning)
      const ok = (step === 2) || (step === null && warnings.length === 1);
      record('resume states', name, ok, `accepted: resumed at ${step}`);
    } catch (err) {
      const e = err as Error;
      const clean = !(e instanceof TypeError) && !(e instanceof RangeError) && oneLine(e.message) && e.message.includes(path.join(d, 'checkpoints', 'step-000002'));
      record('resume states', name, clean, `${e.name}: ${e.message}`);
    }
  }
}

// ---------------------------------------------------------------- kills
async function kills(count: number): Promise<void> {
  const child = path.join(root, 'test', 'helpers', 'train-child.ts');
  const refDir = dir('kill-ref');
  const ref = makeTinyTrainer({ runDir: refDir, steps: 30, checkpointEvery: 1 });
  await ref.trainer.run();
  const want = snapshot(ref.model);
  for (let i = 0; i < count; i++) {
    const d = dir('kill');
    // a random moment after training has started (the first checkpoint is on disk): during a step, a checkpoint
    // write, or a pruning
    const delay = Math.round(Math.random() * 1500);
    const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify({ runDir: d, steps: 30, checkpointEvery: 1, mode: 'sigint', at: 999 })], { stdio: 'ignore' });
    let gone = false;
    const exited = new Promise<string | null>((resolve) => proc.on('exit', (_c, s) => { gone = true; resolve(s); }));
    const first = path.join(d, 'checkpoints', 'step-000001');
    const until = Date.now() + 60_000;
    while (!gone && !fs.existsSync(first) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const timer = setTimeout(() => proc.kill('SIGKILL'), delay);
    const sig = await exited;
    clearTimeout(timer);
    try {
      const resumed = makeTinyTrainer({ runDir: d, steps: 30, checkpointEvery: 1 });
      const from = resumed.trainer.resume();
      await resumed.trainer.run();
      const same = JSON.stringify([...snapshot(resumed.model)]) === JSON.stringify([...want]);
      const leftovers = fs.readdirSync(path.join(d, 'checkpoints')).filter((e) => e.startsWith('.'));
      const complete = listCheckpoints(d).length === fs.readdirSync(path.join(d, 'checkpoints')).filter((e) => /^step-/.test(e)).length;
      record('kills', `SIGKILL ${delay} ms after the first checkpoint (${sig ?? 'finished first'}), resumed from ${from ?? 'scratch'}`, same && leftovers.length === 0 && complete, `same weights ${same}, leftovers ${leftovers.join(',')}, complete ${complete}`);
    } catch (err) {
      record('kills', `SIGKILL after ${delay} ms`, false, (err as Error).message);
    }
  }
  // the CLI: SIGINT / SIGTERM exit 130 / 143 after a checkpoint, and --resume finishes the run (REDTEAM_CLI=0 skips)
  for (const sig of process.env['REDTEAM_CLI'] === '0' ? [] : (['SIGINT', 'SIGTERM'] as const)) {
    for (let k = 0; k < 3; k++) {
      const out = path.join(dir('cli-signal'), 'run');
      const args = ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'pretrain', '--recipe', 'tcmoe-a2-2e-5', '--tiny', '--steps', '400', '--set', 'eval.max_batches=1', '--out', out];
      const p = spawn(process.execPath, args, { cwd: root, env: { ...process.env, MOE_TUNE_BACKEND: 'js' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      const code = await new Promise<number | null>((resolve) => {
        p.stdout!.on('data', (b: Buffer) => {
          stdout += b.toString();
          if (/step \d+\/400/.test(stdout) && !p.killed) setTimeout(() => p.kill(sig), 200 * k);
        });
        p.on('close', (c) => resolve(c));
      });
      const again = spawnSync(process.execPath, [...args, '--resume'], { cwd: root, env: { ...process.env, MOE_TUNE_BACKEND: 'js' }, encoding: 'utf8' });
      const want2 = sig === 'SIGINT' ? 130 : 143;
      record('kills', `CLI ${sig} #${k + 1}`, code === want2 && again.status === 0, `exit ${code} (want ${want2}), resume exit ${again.status}: ${again.stderr.slice(-200)}`);
    }
  }
}

// ---------------------------------------------------------------- Hub
async function expectPullOutcome(name: string, run: () => Promise<unknown>, check: (r: unknown) => boolean, token: string, boundMs = 20_000): Promise<void> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), boundMs); });
  try {
    const r = await Promise.race([run(), bound]);
    if (r === 'timeout') record('hub', name, false, `no answer within ${boundMs} ms`);
    else record('hub', name, check(r), `succeeded: ${JSON.stringify(r).slice(0, 200)}`);
  } catch (err) {
    const e = err as Error;
    const clean = e instanceof HubError && oneLine(e.message) && !e.message.includes(token) && !(e.stack ?? '').includes(token);
    record('hub', `${name} -> ${e instanceof HubError ? e.kind : e.name} (${Date.now() - t0} ms)`, clean, e.message);
  } finally {
    clearTimeout(timer);
  }
}

async function hubCases(): Promise<void> {
  const CONTENT = Buffer.from('{"hidden_size": 32}\n'.repeat(300));
  const model = dir('hub-model');
  writeTinyModelDir(model);
  const files: Record<string, Buffer> = {};
  for (const rel of listFilesRecursive(model)) files[rel] = fs.readFileSync(path.join(model, rel));
  const fresh = async (): Promise<MockHub> => {
    const h = await startMockHub();
    h.seed('org/tiny', { ...files, 'extra.json': CONTENT });
    return h;
  };
  const quick = { sleep: async (): Promise<void> => undefined };
  const pullOpts = (h: MockHub, cache: string, more: Record<string, unknown> = {}): Record<string, unknown> => ({ endpoint: h.endpoint, cacheDir: cache, env: { HOME: cache }, ...quick, timeoutMs: 1000, ...more });
  const bytesOk = (r: unknown): boolean => {
    const res = r as { snapshotDir: string; files: { path: string }[] };
    return res.files.every((f) => files[f.path] === undefined || fs.readFileSync(path.join(res.snapshotDir, f.path)).equals(files[f.path]!));
  };
  const faultCases: [string, (h: MockHub) => void, (r: unknown) => boolean][] = [
    ['429 Retry-After 1', (h) => h.inject({ when: (q) => q.path.includes('/revision/'), fault: { kind: 'status', status: 429, retryAfter: '1' } }), bytesOk],
    ['429 Retry-After 86400', (h) => h.inject({ when: (q) => q.path.includes('/revision/'), fault: { kind: 'status', status: 429, retryAfter: '86400' } }), () => false],
    ['429 Retry-After as a date far away', (h) => h.inject({ when: (q) => q.path.includes('/revision/'), fault: { kind: 'status', status: 429, retryAfter: 'Wed, 21 Oct 2099 07:28:00 GMT' } }), () => false],
    ...[500, 502, 503, 504].map((s): [string, (h: MockHub) => void, (r: unknown) => boolean] => [`${s} once`, (h) => h.inject({ when: (q) => q.path.endsWith('/config.json'), fault: { kind: 'status', status: s } }), bytesOk]),
    ['503 forever', (h) => h.inject({ when: (q) => q.path.endsWith('/config.json'), fault: { kind: 'status', status: 503 }, times: 1000 }), () => false],
    ['drop mid-body', (h) => h.inject({ when: (q) => q.path.endsWith('/extra.json') && q.range === undefined, fault: { kind: 'drop', after: 1000 } }), bytesOk],
    ['drop mid-body of LFS', (h) => h.inject({ when: (q) => q.origin === 'cdn' && q.range === undefined, fault: { kind: 'drop', after: 5000 } }), bytesOk],
    ['corrupt body', (h) => h.inject({ when: (q) => q.path.endsWith('/extra.json') && q.range === undefined, fault: { kind: 'corrupt' } }), () => false],
    ['corrupt LFS body', (h) => h.inject({ when: (q) => q.origin === 'cdn' && q.range === undefined, fault: { kind: 'corrupt' } }), () => false],
    ['404 on a file', (h) => h.inject({ when: (q) => q.path.endsWith('/extra.json'), fault: { kind: 'status', status: 404 } }), () => false],
    ['401 everywhere', (h) => h.inject({ when: () => true, fault: { kind: 'status', status: 401 }, times: 1000 }), () => false],
  ];
  const names: [string, Record<string, unknown>][] = [
    ['../escape', { type: 'file', path: '../escape', size: 1, oid: 'a'.repeat(40) }],
    ['absolute path', { type: 'file', path: '/etc/passwd', size: 1, oid: 'a'.repeat(40) }],
    ['backslash', { type: 'file', path: 'a\\..\\b', size: 1, oid: 'a'.repeat(40) }],
    ['NUL', { type: 'file', path: 'a\u0000b', size: 1, oid: 'a'.repeat(40) }],
    ['duplicate', { type: 'file', path: 'config.json', size: 1, oid: 'a'.repeat(40) }],
    ['file and dir', { type: 'directory', path: 'config.json', size: 0, oid: 'a'.repeat(40) }],
    ['negative size', { type: 'file', path: 'neg.bin', size: -1, oid: 'a'.repeat(40) }],
    ['bad LFS oid', { type: 'file', path: 'x.safetensors', size: 4, oid: 'a'.repeat(40), lfs: { oid: 'zz', size: 4 } }],
    ['unknown type', { type: 'symlink', path: 'link', size: 0, oid: 'a'.repeat(40) }],
  ];
  for (const [name, inject, ok] of faultCases) {
    const h = await fresh();
    inject(h);
    const cache = dir('hub');
    await expectPullOutcome(name, () => hubPull('org/tiny', pullOpts(h, cache, { retry: { maxAttempts: 3, maxRetryAfterMs: 5000 } })), ok, h.token);
    await h.close();
  }
  for (const [name, entry] of names) {
    const h = await fresh();
    h.extraTreeEntries.push(entry as never);
    const cache = dir('hub');
    await expectPullOutcome(`listing: ${name}`, () => hubPull('org/tiny', pullOpts(h, cache)), () => false, h.token);
    const written = fs.existsSync(path.join(cache, 'models--org--tiny', 'blobs')) ? fs.readdirSync(path.join(cache, 'models--org--tiny', 'blobs')) : [];
    if (written.length > 0) record('hub', `listing: ${name}: nothing written`, false, `wrote ${written.join(',')}`);
    await h.close();
  }
  // servers written here: stalls, endless pages, streaming refusal, off-origin next, non-JSON listing
  const COMMIT = 'c'.repeat(40);
  const server = async (tree: (req: http.IncomingMessage, res: http.ServerResponse) => void, revision?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ endpoint: string; close: () => Promise<void> }> => {
    let count = 0;
    const s = http.createServer((req, res) => {
      if (++count > 3000) return void res.writeHead(500).end();
      if (req.url?.startsWith('/api/models/org/x/revision/')) {
        if (revision) return revision(req, res);
        return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ sha: COMMIT }));
      }
      if (req.url?.startsWith('/api/models/org/x/tree/')) return tree(req, res);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const endpoint = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    return { endpoint, close: async () => { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); } };
  };
  const custom: [string, (req: http.IncomingMessage, res: http.ServerResponse) => void, ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined][] = [
    ['stall before headers', () => undefined, () => undefined],
    ['stall mid-listing', (_q, r) => { r.writeHead(200); r.write('[{"type":"file",'); }, undefined],
    ['endless empty pages', (q, r) => r.writeHead(200, { Link: `<http://${q.headers.host}${q.url}&x=1>; rel="next"` }).end('[]'), undefined],
    ['1001 entries then stall (limit 1000)', (_q, r) => { r.writeHead(200); r.write(`[${Array.from({ length: 1001 }, (_, i) => JSON.stringify({ type: 'file', path: `f${i}`, size: 1, oid: 'a'.repeat(40) })).join(',')},`); }, undefined],
    ['next link to another origin', (_q, r) => r.writeHead(200, { Link: '<http://169.254.169.254/latest>; rel="next"' }).end('[]'), undefined],
    ['listing not JSON', (_q, r) => r.writeHead(200).end('<html>oops</html>'), undefined],
    ['listing entry a string', (_q, r) => r.writeHead(200).end('["config.json"]'), undefined],
    ['one 2 MB entry', (_q, r) => r.writeHead(200).end(`[{"type":"file","path":"${'a'.repeat(2_000_000)}","size":1,"oid":"${'a'.repeat(40)}"}]`), undefined],
    ['redirect loop on revision', () => undefined, (q, r) => r.writeHead(302, { Location: q.url ?? '/' }).end()],
    ['redirect to file:', () => undefined, (_q, r) => r.writeHead(302, { Location: 'file:///etc/passwd' }).end()],
  ];
  for (const [name, tree, revision] of custom) {
    const s = await server(tree, revision);
    const cache = dir('hub');
    await expectPullOutcome(name, () => hubPull('org/x', { endpoint: s.endpoint, cacheDir: cache, env: { HOME: cache }, ...quick, timeoutMs: 500, retry: { maxAttempts: 2 }, maxListEntries: 1000, maxListPages: 100 }), () => false, 'hf_none');
    await s.close();
  }
  // the cache itself
  {
    const h = await fresh();
    const cache = dir('hub');
    const blob = path.join(cache, 'models--org--tiny', 'blobs', gitBlobSha1(CONTENT));
    const victim = path.join(dir('victim'), 'file');
    fs.writeFileSync(victim, 'keep');
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.symlinkSync(victim, `${blob}.incomplete`);
    await expectPullOutcome('planted .incomplete symlink', () => hubPull('org/tiny', pullOpts(h, cache)), (r) => bytesOk(r) && fs.readFileSync(victim, 'utf8') === 'keep', h.token);
    fs.writeFileSync(blob, Buffer.from(CONTENT).fill(0x20, 10, 20));
    await expectPullOutcome('corrupt cached blob, --verify', () => hubPull('org/tiny', pullOpts(h, cache, { verify: true })), () => fs.readFileSync(blob).equals(CONTENT), h.token);
    await expectPullOutcome('offline, cached', () => hubPull('org/tiny', pullOpts(h, cache, { env: { HOME: cache, HF_HUB_OFFLINE: '1' } })), bytesOk, h.token);
    await expectPullOutcome('offline, not cached', () => hubPull('org/other', pullOpts(h, cache, { env: { HOME: cache, HF_HUB_OFFLINE: '1' } })), () => false, h.token);
    await h.close();
  }
}

// ---------------------------------------------------------------- push
async function pushCases(): Promise<void> {
  const h = await startMockHub();
  const token = h.token;
  const base = (): string => {
    const d = dir('push');
    writeTinyAdapterDir(d);
    return d;
  };
  const b64 = (prefix: string, url: boolean): string => {
    const s = Buffer.from(`${prefix}${token}`).toString('base64');
    return url ? s.replace(/\+/g, '-').replace(/\//g, '_') : s;
  };
  const cases: [string, (d: string) => void, boolean][] = [
    ['token in a small file', (d) => fs.writeFileSync(path.join(d, 'notes.txt'), `token: ${token}`), false],
    ['token at the end of a 70 MiB file', (d) => { fs.writeFileSync(path.join(d, 'w.bin'), Buffer.alloc(70 << 20)); fs.appendFileSync(path.join(d, 'w.bin'), token); }, false],
    ['token across the 1 MiB read boundary', (d) => { const b = Buffer.alloc(3 << 20, 1); b.write(token, (1 << 20) - 10); fs.writeFileSync(path.join(d, 'w2.bin'), b); }, false],
    ...['', 'u', 'us', 'use', 'user:'].flatMap((p): [string, (d: string) => void, boolean][] => [false, true].map((url): [string, (d: string) => void, boolean] => [`base64 (${url ? 'url-safe' : 'standard'}) after "${p}"`, (d) => fs.writeFileSync(path.join(d, 'auth.json'), JSON.stringify({ auth: b64(p, url) })), false])),
    ['symlink to a file outside', (d) => { const o = path.join(dir('out'), 'x'); fs.writeFileSync(o, 'x'); fs.symlinkSync(o, path.join(d, 'x')); }, false],
    ['symlink to /etc/hostname', (d) => fs.symlinkSync('/etc/hostname', path.join(d, 'host')), false],
    ['symlink inside', (d) => fs.symlinkSync('adapter_config.json', path.join(d, 'alias.json')), true],
    ['clean directory', () => undefined, true],
  ];
  let i = 0;
  for (const [name, setup, shouldPush] of cases) {
    const d = base();
    setup(d);
    const before = h.requests.filter((q) => /\/commit\//.test(q.path)).length;
    try {
      await hubPush(d, `tester/r${i++}`, { endpoint: h.endpoint, token, env: { HOME: d }, sleep: async () => undefined });
      record('push', name, shouldPush, 'pushed');
    } catch (err) {
      const e = err as Error;
      const after = h.requests.filter((q) => /\/commit\//.test(q.path)).length;
      const clean = !shouldPush && e instanceof HubError && oneLine(e.message) && !e.message.includes(token) && e.message.startsWith(d) && after === before;
      record('push', name, clean, e.message);
    }
  }
  await h.close();
}

// ---------------------------------------------------------------- sizes and flags through the CLI
function sizes(): void {
  // [--set, must it be refused?]: a size that fits this machine may train (slowly); one that does not must be one line
  const sets: [string, boolean][] = [
    ['model.config.hidden_size=1000000000000', true], ['model.config.hidden_size=100000000', true], ['model.config.num_local_experts=1000000', true],
    ['model.config.intermediate_size=10000000000', true], ['model.config.num_hidden_layers=10000000', true], ['model.config.num_attention_heads=1000000', true],
    ['model.config.max_position_embeddings=1e18', true], ['model.config.hidden_size=1e18', true], ['model.config.num_local_experts=-1', true],
    ['model.config.hidden_size=0', true], ['model.config.num_key_value_heads=3', true], ['tokenizer.vocab_size=1000000000', false],
  ];
  for (const [s, mustFail] of sets) {
    const parent = dir('sizes');
    const out = path.join(parent, 'run');
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'pretrain', '--recipe', 'tcmoe-a2-2e-5', '--tiny', '--steps', '1', '--set', s, '--out', out],
      { cwd: root, env: { ...process.env, MOE_TUNE_BACKEND: 'js' }, encoding: 'utf8', timeout: 60_000 });
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('moe-tune: warning:'));
    const refused = r.status !== 0 && r.status !== null && lines.length === 1 && lines[0]!.startsWith('moe-tune: ') && !fs.existsSync(out) && Date.now() - t0 < 60_000;
    const clean = refused || (!mustFail && r.status === 0);
    record('sizes', `${s} (${r.status === 0 ? 'trained' : 'refused'})`, clean, `exit ${r.status} in ${Date.now() - t0} ms: ${r.stderr.trim().slice(0, 300)}; run dir left: ${fs.existsSync(out)}`);
  }
}

const only = (process.argv.find((a) => a.startsWith('--only=')) ?? '').slice('--only='.length).split(',').filter(Boolean);
const want = (g: string): boolean => only.length === 0 || only.includes(g);
if (want('resume')) await resumeStates();
if (want('kills')) await kills(Number(process.env['REDTEAM_KILLS'] ?? 20));
if (want('hub')) await hubCases();
if (want('push')) await pushCases();
if (want('sizes')) sizes();
const groups = [...new Set(outcomes.map((o) => o.group))];
const summary = Object.fromEntries(groups.map((g) => {
  const os2 = outcomes.filter((o) => o.group === g);
  return [g, { tried: os2.length, clean: os2.filter((o) => o.clean).length }];
}));
process.stdout.write(`${JSON.stringify({ summary, not_clean: outcomes.filter((o) => !o.clean) }, null, 2)}\n`);
fs.rmSync(tmp, { recursive: true, force: true });
