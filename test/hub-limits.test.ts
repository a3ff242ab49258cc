/**
 * The Hub client against hostile or broken servers and a shared cache (issue 18: items 13, 17 and 19), all on
 * 127.0.0.1 with bounded waits:
 * - a server that stalls (before answering, or mid-body) times out (HF_HUB_DOWNLOAD_TIMEOUT) and the download
 *   resumes with a Range request;
 * - endless pagination is capped; a listing is streamed, so a refusal happens while the server is still sending;
 * - a planted `blobs/<sha>.incomplete` symlink is never followed; a corrupt cached blob is re-fetched with verify;
 * - a blob is downloaded under `.locks/<repo folder>/<blob>.lock` (huggingface_hub's place): a pull waits for the
 *   holder and then uses the blob it finished.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { hubPull, type HubPullOptions } from '../src/hub/pull.js';
import * as os from 'node:os';
import { HubError } from '../src/hub/hub-error.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { gitBlobSha1, startMockHub, type MockHub } from './helpers/hub-server.js';
import { spawn } from 'node:child_process';
import { CLI_MAIN } from './helpers/cli.js';

const COMMIT = 'c'.repeat(40);
const noSleep = async (): Promise<void> => undefined;

interface TinyServer {
  endpoint: string;
  requests: { path: string; range: string | undefined }[];
  close(): Promise<void>;
}

/** A server for one repo `org/x` whose tree and resolve handlers the test writes. */
async function tinyServer(handlers: {
  tree?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void;
  resolve?: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
  revision?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}): Promise<TinyServer> {
  const requests: { path: string; range: string | undefined }[] = [];
  let resolves = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ path: url.pathname + url.search, range: req.headers.range });
    if (requests.length > 2000) {
      res.writeHead(500).end('request budget exhausted');
      return;
    }
    if (url.pathname.startsWith('/api/models/org/x/revision/')) {
      if (handlers.revision) return handlers.revision(req, res);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: 'org/x', sha: COMMIT, siblings: [] }));
      return;
    }
    if (url.pathname.startsWith('/api/models/org/x/tree/') && handlers.tree) return handlers.tree(req, res, url);
    if (url.pathname.startsWith('/org/x/resolve/') && handlers.resolve) {
      if (req.headers.range === 'bytes=0-0') {
        // the download-info probe (@huggingface/hub fileDownloadInfo)
        res.writeHead(206, { 'Content-Length': '1', 'Content-Range': `bytes 0-0/${CONTENT.length}`, ETag: `"${ENTRY.oid}"`, 'X-Repo-Commit': COMMIT });
        return void res.end(CONTENT.subarray(0, 1));
      }
      return handlers.resolve(req, res, resolves++);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const servers: TinyServer[] = [];
let hub: MockHub | undefined;
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await hub?.close();
  hub = undefined;
});

const configOf = (r: { files: { path: string; status: string }[] }): { path: string; status: string } => r.files.find((f) => f.path === 'config.json')!;

function base(endpoint: string, cache: string, over: HubPullOptions = {}): HubPullOptions {
  return { endpoint, cacheDir: cache, env: { HOME: cache }, sleep: noSleep, ...over };
}

async function caught(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    return err as HubError;
  }
  throw new Error('expected a HubError');
}

const CONTENT = Buffer.from('{"hidden_size": 32}\n'.repeat(400));
const ENTRY = { type: 'file', path: 'config.json', size: CONTENT.length, oid: gitBlobSha1(CONTENT) };

describe('timeouts (item 13)', () => {
  it('a server that never answers: one line after the tries, within the timeout budget (HF_HUB_DOWNLOAD_TIMEOUT)', async () => {
    const s = await tinyServer({ revision: () => { /* accept, never answer */ } });
    servers.push(s);
    const cache = makeTmpDir('hub-stall');
    const t0 = Date.now();
    const e = await caught(hubPull('org/x', base(s.endpoint, cache, { env: { HOME: cache, HF_HUB_DOWNLOAD_TIMEOUT: '0.3' }, retry: { maxAttempts: 2 } })));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/no response within 0\.3 s \(the timeout is HF_HUB_DOWNLOAD_TIMEOUT/);
    expect(s.requests).toHaveLength(2);
  }, 20_000);

  it('a body that stalls midway: the idle timeout fires and the download resumes with Range', async () => {
    const s = await tinyServer({
      tree: (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify([ENTRY])),
      resolve: (req, res) => {
        const etag = `"${ENTRY.oid}"`;
        const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        if (m === null) {
          res.writeHead(200, { 'Content-Length': String(CONTENT.length), ETag: etag });
          res.write(CONTENT.subarray(0, 3000)); // ... and then nothing, forever
          return;
        }
        const start = Number(m[1]);
        res.writeHead(206, { 'Content-Length': String(CONTENT.length - start), 'Content-Range': `bytes ${start}-${CONTENT.length - 1}/${CONTENT.length}`, ETag: etag });
        res.end(CONTENT.subarray(start));
      },
    });
    servers.push(s);
    const cache = makeTmpDir('hub-stall-body');
    const t0 = Date.now();
    const r = await hubPull('org/x', base(s.endpoint, cache, { timeoutMs: 400 }));
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(r.files).toEqual([expect.objectContaining({ path: 'config.json', status: 'downloaded' })]);
    expect(fs.readFileSync(path.join(r.snapshotDir, 'config.json')).equals(CONTENT)).toBe(true);
    expect(s.requests.filter((q) => q.path.includes('/resolve/')).map((q) => q.range)).toContain('bytes=3000-');
  }, 20_000);
});

describe('listing limits (item 19)', () => {
  it('endless empty pages with a next link: refused after the page cap', async () => {
    const s = await tinyServer({
      tree: (_req, res, url) => {
        const n = Number(url.searchParams.get('cursor') ?? '0');
        res.writeHead(200, { 'Content-Type': 'application/json', Link: `<http://${_req.headers.host}/api/models/org/x/tree/${COMMIT}?recursive=true&cursor=${n + 1}>; rel="next"` }).end('[]');
      },
    });
    servers.push(s);
    const cache = makeTmpDir('hub-pages');
    const e = await caught(hubPull('org/x', base(s.endpoint, cache, { maxListPages: 50 })));
    expect(e.message).toMatch(/the file list runs past 50 pages \(0 entries so far\); refusing/);
    expect(s.requests.filter((q) => q.path.includes('/tree/'))).toHaveLength(50);
  }, 20_000);

  it('a listing is streamed: too many entries are refused while the page is still arriving', async () => {
    const s = await tinyServer({
      tree: (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const entries = Array.from({ length: 1001 }, (_, i) => JSON.stringify({ type: 'file', path: `f${i}.txt`, size: 1, oid: 'a'.repeat(40) }));
        res.write(`[${entries.join(',')},`); // ... the rest of the page never comes
      },
    });
    servers.push(s);
    const cache = makeTmpDir('hub-stream');
    const t0 = Date.now();
    const e = await caught(hubPull('org/x', base(s.endpoint, cache, { maxListEntries: 1000, timeoutMs: 60_000 })));
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(e.message).toMatch(/the file list has more than 1000 entries; refusing/);
  }, 20_000);

  it('a 300 000-entry listing in 300 pages is streamed through (only the selected files kept)', async () => {
    const PER = 1000;
    const s = await tinyServer({
      tree: (req, res, url) => {
        const page = Number(url.searchParams.get('cursor') ?? '0');
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (page < 299) headers['Link'] = `<http://${req.headers.host}/api/models/org/x/tree/${COMMIT}?recursive=true&cursor=${page + 1}>; rel="next"`;
        const entries = Array.from({ length: PER }, (_, i) => ({ type: 'file', path: `d${page}/f${i}.txt`, size: 1, oid: 'a'.repeat(40) }));
        if (page === 0) entries[0] = ENTRY;
        res.writeHead(200, headers).end(JSON.stringify(entries));
      },
      resolve: (_req, res) => {
        res.writeHead(200, { 'Content-Length': String(CONTENT.length), ETag: `"${ENTRY.oid}"`, 'X-Repo-Commit': COMMIT });
        res.end(CONTENT);
      },
    });
    servers.push(s);
    const cache = makeTmpDir('hub-big-list');
    const r = await hubPull('org/x', base(s.endpoint, cache, { include: ['config.json'], maxListEntries: 400_000 }));
    expect(r.files.map((f) => f.path)).toEqual(['config.json']);
    expect(s.requests.filter((q) => q.path.includes('/tree/'))).toHaveLength(300);
  }, 60_000);
});

describe('the cache (items 17 and 19)', () => {
  async function seeded(): Promise<{ cache: string; blob: string; hex: string }> {
    hub = await startMockHub();
    hub.seed('org/tiny', { 'config.json': CONTENT });
    const cache = makeTmpDir('hub-cache-safety');
    const hex = gitBlobSha1(CONTENT);
    return { cache, blob: path.join(cache, 'models--org--tiny', 'blobs', hex), hex };
  }

  it('a planted blobs/<sha>.incomplete symlink is removed, never appended to', async () => {
    const { cache, blob } = await seeded();
    const victim = path.join(makeTmpDir('victim'), 'bashrc');
    fs.writeFileSync(victim, 'precious\n');
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.symlinkSync(victim, `${blob}.incomplete`);
    const warnings: string[] = [];
    const r = await hubPull('org/tiny', base(hub!.endpoint, cache, { onWarning: (l) => warnings.push(l) }));
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(fs.readFileSync(path.join(r.snapshotDir, 'config.json')).equals(CONTENT)).toBe(true);
    expect(fs.lstatSync(blob).isFile()).toBe(true);
    expect(warnings.some((w) => w.includes(`${blob}.incomplete: was a symlink`))).toBe(true);
  });

  it('a corrupt cached blob of the right size: served as cached without verify, re-fetched with verify', async () => {
    const { cache, blob } = await seeded();
    await hubPull('org/tiny', base(hub!.endpoint, cache));
    const bad = Buffer.from(CONTENT);
    bad[100] ^= 0xff;
    fs.writeFileSync(blob, bad);
    const plain = await hubPull('org/tiny', base(hub!.endpoint, cache));
    expect(configOf(plain).status).toBe('cached');
    const warnings: string[] = [];
    const checked = await hubPull('org/tiny', base(hub!.endpoint, cache, { verify: true, onWarning: (l) => warnings.push(l) }));
    expect(configOf(checked).status).toBe('downloaded');
    expect(fs.readFileSync(blob).equals(CONTENT)).toBe(true);
    expect(warnings.join('\n')).toMatch(/cached blob of file config.json .* fails verification .* downloading it again/);
    const again = await hubPull('org/tiny', base(hub!.endpoint, cache, { verify: true }));
    expect(configOf(again).status).toBe('cached');
  });

  it('a blob locked by another download (.locks/models--org--tiny/<blob>.lock): the pull waits, then uses the finished blob', async () => {
    const { cache, blob, hex } = await seeded();
    const lockPath = path.join(cache, '.locks', 'models--org--tiny', `${hex}.lock`);
    // another live process holds it (this test process: a live pid on this host), as src/io/file-lock.ts records owners
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    fs.writeFileSync(lockPath, JSON.stringify({ pid: process.pid, host: os.hostname(), start: null, what: 'another pull', since: '' }));
    const held = { release: (): void => fs.rmSync(lockPath) };
    const warnings: string[] = [];
    const pulling = hubPull('org/tiny', base(hub!.endpoint, cache, { include: ['config.json'], onWarning: (l) => warnings.push(l) }));
    const until = Date.now() + 10_000;
    while (warnings.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(warnings[0]).toMatch(/another process \(pid \d+\) is downloading this blob; waiting for it/);
    expect(fs.existsSync(`${blob}.incomplete`)).toBe(false); // nothing written while the other holds it
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.writeFileSync(blob, CONTENT); // the other process finishes ...
    held.release(); // ... and lets go
    const r = await pulling;
    expect(configOf(r).status).toBe('cached');
    expect(hub!.requests.filter((q) => q.path.includes('/resolve/'))).toHaveLength(0);
    expect(fs.existsSync(lockPath)).toBe(false);
  }, 20_000);
});

describe('two processes pulling into one cache (item 17)', () => {
  it('the blob is fetched once; the second process waits on the lock and reuses it', async () => {
    const s = await tinyServer({
      tree: (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify([ENTRY])),
      resolve: (_req, res) => {
        // a slow body (about 6 s), so the two pulls overlap even when one process starts seconds later
        res.writeHead(200, { 'Content-Length': String(CONTENT.length), ETag: `"${ENTRY.oid}"` });
        let at = 0;
        const tick = setInterval(() => {
          res.write(CONTENT.subarray(at, at + 200));
          at += 200;
          if (at >= CONTENT.length) {
            clearInterval(tick);
            res.end();
          }
        }, 150);
        res.on('close', () => clearInterval(tick));
      },
    });
    servers.push(s);
    const cache = makeTmpDir('hub-two-procs');
    const pull = (): Promise<{ code: number | null; stderr: string }> => new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'hub', 'pull', 'org/x', '--endpoint', s.endpoint, '--cache-dir', cache],
        { env: { ...process.env, HF_TOKEN: '', HOME: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
    });
    const [a, b] = await Promise.all([pull(), pull()]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const bodies = s.requests.filter((q) => q.path.includes('/resolve/') && q.range !== 'bytes=0-0');
    expect(bodies).toHaveLength(1);
    expect(`${a.stderr}${b.stderr}`).toMatch(/another process \(pid \d+\) is downloading this blob; waiting for it/);
    const blob = path.join(cache, 'models--org--x', 'blobs', ENTRY.oid);
    expect(fs.readFileSync(blob).equals(CONTENT)).toBe(true);
    expect(fs.readdirSync(path.dirname(blob))).toEqual([ENTRY.oid]);
  }, 90_000);
});
