import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { hubPull, type HubPullOptions } from '../src/hub/pull.js';
import type { HubError } from '../src/hub/hub-error.js';
import { expectHubError } from './helpers/hub-error.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { findSecret, listFilesRecursive, startMockHub, writeTinyModelDir, type MockHub } from './helpers/hub-server.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function gitHashObject(file: string): string | undefined {
  try {
    return execFileSync('git', ['hash-object', file], { encoding: 'utf8' }).trim();
  } catch {
    return undefined; // git not installed: the other checks still run
  }
}

let hub: MockHub;
let cache: string;
let model: string;
const noSleep = async (): Promise<void> => undefined;

function opts(over: HubPullOptions = {}): HubPullOptions {
  // env: {} keeps the developer's HF_TOKEN / HF_HOME / token file out of the tests; HOME points to a temp dir
  return { endpoint: hub.endpoint, cacheDir: cache, env: { HOME: cache }, sleep: noSleep, ...over };
}

const pullError = (p: Promise<unknown>): Promise<HubError> => expectHubError(p, hub.token);

beforeEach(async () => {
  hub = await startMockHub();
  cache = makeTmpDir('hub-cache');
  model = makeTmpDir('hub-model');
  writeTinyModelDir(model);
});

afterEach(async () => {
  await hub.close();
});

function seedModel(opts2: { private?: boolean } = {}): string {
  const files: Record<string, Buffer> = {};
  for (const rel of listFilesRecursive(model)) files[rel] = fs.readFileSync(path.join(model, rel));
  return hub.seed('org/tiny', files, opts2);
}

describe('hubPull: cache layout', () => {
  it('lays files out as the Python cache does: blobs by content hash, relative symlinks, refs/main', async () => {
    const commit = seedModel({ private: true });
    const res = await hubPull('org/tiny', opts({ token: hub.token }));
    const storage = path.join(cache, 'models--org--tiny');
    expect(res.commit).toBe(commit);
    expect(res.storageDir).toBe(storage);
    expect(res.snapshotDir).toBe(path.join(storage, 'snapshots', commit));
    expect(fs.readFileSync(path.join(storage, 'refs', 'main'), 'utf8')).toBe(commit); // no newline, as Python writes it

    const expected = [...listFilesRecursive(model), '.gitattributes'].sort();
    expect(listFilesRecursive(res.snapshotDir)).toEqual(expected);
    for (const rel of listFilesRecursive(model)) {
      const src = fs.readFileSync(path.join(model, rel));
      const link = path.join(res.snapshotDir, rel);
      expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(link).equals(src)).toBe(true);
      const blobName = rel.endsWith('.safetensors') ? sha256(src) : gitHashObject(path.join(model, rel));
      const depth = rel.split('/').length - 1;
      if (blobName !== undefined) expect(fs.readlinkSync(link)).toBe(`${'../'.repeat(depth + 2)}blobs/${blobName}`);
    }
    // the LFS file is named by its sha256, the regular ones by their git blob sha1 (40 hex)
    const blobs = fs.readdirSync(path.join(storage, 'blobs')).sort();
    expect(blobs.filter((b) => /^[0-9a-f]{64}$/.test(b))).toEqual([sha256(fs.readFileSync(path.join(model, 'model.safetensors')))]);
    expect(blobs.filter((b) => /^[0-9a-f]{40}$/.test(b))).toHaveLength(4);
    expect(res.files.every((f) => f.status === 'downloaded')).toBe(true);

    // the token went to the hub, never to the CDN origin
    expect(hub.requests.some((r) => r.origin === 'cdn')).toBe(true);
    expect(hub.requests.filter((r) => r.origin === 'cdn').every((r) => !r.authorization)).toBe(true);
    expect(hub.requests.filter((r) => r.origin === 'hub').every((r) => r.authorization)).toBe(true);
    expect(hub.unhandled).toEqual([]);
    expect(findSecret(cache, hub.token)).toEqual([]);

    // a second pull downloads nothing
    const before = hub.requests.length;
    const again = await hubPull('org/tiny', opts({ token: hub.token }));
    expect(again.files.every((f) => f.status === 'cached')).toBe(true);
    expect(hub.requests.slice(before).filter((r) => r.path.includes('/resolve/') || r.origin === 'cdn')).toEqual([]);
  });

  it('follows a listing split over pages (Link: rel="next") and pulls a commit sha without writing a ref', async () => {
    await hub.close();
    hub = await startMockHub({ treePageSize: 2 });
    const commit = seedModel();
    const res = await hubPull('org/tiny', opts({ revision: commit }));
    expect(res.files.map((f) => f.path).sort()).toEqual([...listFilesRecursive(model), '.gitattributes'].sort());
    expect(hub.requests.filter((r) => r.path.includes('/tree/')).length).toBeGreaterThan(2);
    expect(fs.existsSync(path.join(cache, 'models--org--tiny', 'refs'))).toBe(false);
  });

  it('shares one blob between files with the same content, also across concurrent pulls; odd names are URL-encoded', async () => {
    const same = Buffer.from('{"same": true}\n');
    const weights = fs.readFileSync(path.join(model, 'model.safetensors'));
    hub.seed('org/dups', { 'a.json': same, 'b/a.json': same, 'name with #hash?.json': 'unique', 'w1.safetensors': weights, 'w2.safetensors': weights });
    const [r1, r2] = await Promise.all([hubPull('org/dups', opts()), hubPull('org/dups', opts())]);
    expect(r1.snapshotDir).toBe(r2.snapshotDir);
    expect(fs.readFileSync(path.join(r1.snapshotDir, 'name with #hash?.json'), 'utf8')).toBe('unique');
    for (const rel of ['a.json', 'b/a.json']) expect(fs.readFileSync(path.join(r1.snapshotDir, rel)).equals(same)).toBe(true);
    expect(fs.readFileSync(path.join(r1.snapshotDir, 'w2.safetensors')).equals(weights)).toBe(true);
    const blobs = fs.readdirSync(path.join(r1.storageDir, 'blobs')).sort();
    expect(blobs).toHaveLength(4); // .gitattributes, the shared json, the unique file, the shared weights
    // each blob's bytes were fetched once
    expect(hub.requests.filter((r) => r.origin === 'cdn' && r.range === undefined)).toHaveLength(1);
    expect(hub.requests.filter((r) => r.path.includes('#hash?')).length).toBeGreaterThan(0);
    expect(hub.unhandled).toEqual([]);
  });

  it('pulls dataset repos into datasets--org--name', async () => {
    hub.seed('org/data', { 'train.jsonl': '{"q": 1}\n' }, { type: 'dataset' });
    const res = await hubPull('datasets/org/data', opts());
    expect(res.snapshotDir.startsWith(path.join(cache, 'datasets--org--data', 'snapshots'))).toBe(true);
    expect(fs.readFileSync(path.join(res.snapshotDir, 'train.jsonl'), 'utf8')).toBe('{"q": 1}\n');
  });

  it('honours HF_HUB_CACHE, then HF_HOME/hub', async () => {
    seedModel();
    const a = makeTmpDir('hub-env-a');
    const b = makeTmpDir('hub-env-b');
    const r1 = await hubPull('org/tiny', { endpoint: hub.endpoint, env: { HOME: a, HF_HUB_CACHE: path.join(a, 'c'), HF_HOME: b }, include: ['config.json'] });
    expect(r1.snapshotDir.startsWith(path.join(a, 'c', 'models--org--tiny', 'snapshots'))).toBe(true);
    const r2 = await hubPull('org/tiny', { endpoint: hub.endpoint, env: { HOME: a, HF_HOME: b }, include: ['config.json'] });
    expect(r2.snapshotDir.startsWith(path.join(b, 'hub', 'models--org--tiny', 'snapshots'))).toBe(true);
    const r3 = await hubPull('org/tiny', { endpoint: hub.endpoint, env: { HOME: a, HF_ENDPOINT: hub.endpoint }, include: ['config.json'] });
    expect(r3.snapshotDir.startsWith(path.join(a, '.cache', 'huggingface', 'hub'))).toBe(true);
  });

  it('selects files with --include / --exclude globs', async () => {
    seedModel();
    const pick = async (include: string[], exclude: string[] = []): Promise<string[]> => {
      const r = await hubPull('org/tiny', opts({ include, exclude }));
      return r.files.map((f) => f.path).sort();
    };
    expect(await pick(['*.safetensors'])).toEqual(['model.safetensors']);
    expect(await pick(['config.json'])).toEqual(['config.json']);
    expect(await pick(['**/*.json'])).toEqual(['tokenizer/vocab.json']); // fnmatch, as huggingface_hub: needs a slash
    expect(await pick(['*.json'])).toEqual(['config.json', 'generation_config.json', 'tokenizer/vocab.json']); // `*` crosses `/`
    expect(await pick(['*.json'], ['tokenizer/'])).toEqual(['config.json', 'generation_config.json']);
    const e = await pullError(hubPull('org/tiny', opts({ include: ['*.gguf'] })));
    expect(e.message).toContain('no file matches --include "*.gguf"');
  });
});

describe('hubPull: errors and retries', () => {
  it('retries a transient 503 on the first request of a file and succeeds', async () => {
    seedModel();
    hub.inject({ when: (r) => r.path.endsWith('/config.json'), fault: { kind: 'status', status: 503, retryAfter: '1' } });
    const retries: { what: string; delayMs: number }[] = [];
    const delays: number[] = [];
    const res = await hubPull('org/tiny', opts({ include: ['config.json'], onRetry: (e) => retries.push(e), sleep: async (ms) => void delays.push(ms) }));
    expect(fs.readFileSync(path.join(res.snapshotDir, 'config.json')).equals(fs.readFileSync(path.join(model, 'config.json')))).toBe(true);
    const resolves = hub.requests.filter((r) => r.path.endsWith('/config.json'));
    expect(resolves.map((r) => r.status)).toEqual([503, 206, 200]); // 503, then the info probe (Range 0-0), then the body
    expect(retries).toHaveLength(1);
    expect(retries[0]!.what).toMatch(/^file config\.json of repo org\/tiny at revision [0-9a-f]{40}$/);
    expect(delays).toEqual([1000]); // Retry-After: 1
  });

  it('gives up after the bounded number of tries with one clear line', async () => {
    seedModel();
    hub.inject({ when: (r) => r.path.endsWith('/config.json'), fault: { kind: 'status', status: 502 }, times: 100 });
    const e = await pullError(hubPull('org/tiny', opts({ include: ['config.json'] })));
    expect(e.kind).toBe('server');
    expect(e.message).toMatch(/server error from http:\/\/127\.0\.0\.1:\d+ \(HTTP 502\) for file config\.json of repo org\/tiny at revision [0-9a-f]{40} after 5 tries/);
    expect(hub.requests.filter((r) => r.path.endsWith('/config.json'))).toHaveLength(5);
  });

  it('a 401 is one clear line naming the endpoint, with or without a token, and never shows the token', async () => {
    seedModel({ private: true });
    const none = await pullError(hubPull('org/tiny', opts()));
    expect(none.kind).toBe('auth');
    expect(none.message).toBe(
      `authentication failed for ${hub.endpoint} (HTTP 401 on repo org/tiny revision main): set HF_TOKEN (or log in with \`huggingface-cli login\`) to a valid token with access to this repo; no token was sent (server: Repository not found)`,
    );
    expect(none.message).toContain(`authentication failed for ${hub.endpoint} (HTTP 401 on repo org/tiny revision main): set HF_TOKEN`);
    expect(none.message).toContain('no token was sent');
    const wrong = 'hf_wrongWrongWrong1234567890';
    const bad = await pullError(hubPull('org/tiny', opts({ token: wrong })));
    expect(bad.kind).toBe('auth');
    expect(bad.message).toContain('the token sent was rejected');
    expect(bad.message).not.toContain(wrong);
  });

  it('redacts a token a hostile server echoes back', async () => {
    await hub.close();
    hub = await startMockHub({ echoAuthorization: true });
    seedModel({ private: true });
    const wrong = 'hf_echoedSecret0987654321';
    const e = await pullError(hubPull('org/tiny', opts({ token: wrong })));
    expect(e.message).toContain('(you sent: Bearer <redacted>)');
    expect(e.message).not.toContain(wrong);
  });

  it('404s name the repo, the revision or the file', async () => {
    seedModel();
    const repo = await pullError(hubPull('org/nope', opts({ token: hub.token })));
    expect(repo.kind).toBe('not-found');
    expect(repo.message).toContain('not found: repo org/nope revision main');
    expect(repo.message).toContain('the repo does not exist');
    const rev = await pullError(hubPull('org/tiny', opts({ revision: 'v9' })));
    expect(rev.message).toContain('not found: repo org/tiny revision v9');
    expect(rev.message).toContain('the revision does not exist');
  });

  it('rejects bad repo ids and revisions before any request', async () => {
    for (const bad of ['../x', 'a/b/c', 'org/na--me', '']) {
      const e = await pullError(hubPull(bad, opts()));
      expect(e.kind).toBe('bad-input');
    }
    const e = await pullError(hubPull('org/tiny', opts({ revision: '../main' })));
    expect(e.kind).toBe('bad-input');
    expect(hub.requests).toEqual([]);
  });
});

describe('hubPull: resumable, verified downloads', () => {
  const lfsPath = (r: { origin: string; path: string }): boolean => r.origin === 'cdn' && r.path.startsWith('/lfs/');

  it('keeps the partial file when the connection drops and resumes it with a Range request on the next pull', async () => {
    seedModel();
    const weights = fs.readFileSync(path.join(model, 'model.safetensors'));
    const oid = sha256(weights);
    // the info probe (Range: bytes=0-0) passes; the first full GET is cut after 64 KiB
    hub.inject({ when: (r) => lfsPath(r) && r.range === undefined, fault: { kind: 'drop', after: 65536 } });
    const e = await pullError(hubPull('org/tiny', opts({ include: ['model.safetensors'], retry: { maxAttempts: 1 } })));
    expect(e.kind).toBe('network');
    expect(e.message).toMatch(/download of file model\.safetensors of repo org\/tiny .* interrupted after \d+ of \d+ bytes/);
    const partial = path.join(cache, 'models--org--tiny', 'blobs', `${oid}.incomplete`);
    const have = fs.statSync(partial).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(65536);
    expect(fs.existsSync(path.join(cache, 'models--org--tiny', 'blobs', oid))).toBe(false);

    const res = await hubPull('org/tiny', opts({ include: ['model.safetensors'] }));
    expect(res.files[0]!.status).toBe('resumed');
    const ranged = hub.requests.filter((r) => lfsPath(r) && r.range !== 'bytes=0-0');
    expect(ranged.map((r) => r.range)).toEqual([undefined, `bytes=${have}-`]);
    expect(ranged[1]!.status).toBe(206);
    const got = fs.readFileSync(path.join(res.snapshotDir, 'model.safetensors'));
    expect(got.equals(weights)).toBe(true);
    expect(sha256(got)).toBe(oid);
    expect(fs.existsSync(partial)).toBe(false);
  });

  it('resumes within one pull when retries are left', async () => {
    seedModel();
    const weights = fs.readFileSync(path.join(model, 'model.safetensors'));
    hub.inject({ when: (r) => lfsPath(r) && r.range === undefined, fault: { kind: 'drop', after: 100000 } });
    const res = await hubPull('org/tiny', opts({ include: ['model.safetensors'] }));
    expect(res.files[0]!.status).toBe('downloaded');
    const ranged = hub.requests.filter((r) => lfsPath(r) && r.range !== 'bytes=0-0');
    expect(ranged).toHaveLength(2);
    expect(ranged[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranged[1]!.range!)![0])).toBeGreaterThan(0);
    expect(fs.readFileSync(path.join(res.snapshotDir, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('a corrupted LFS body fails sha256 verification, and the bad bytes are deleted', async () => {
    seedModel();
    const oid = sha256(fs.readFileSync(path.join(model, 'model.safetensors')));
    hub.inject({ when: (r) => lfsPath(r) && r.range === undefined, fault: { kind: 'corrupt' } });
    const e = await pullError(hubPull('org/tiny', opts({ include: ['model.safetensors'] })));
    expect(e.kind).toBe('integrity');
    expect(e.message).toContain(`file model.safetensors of repo org/tiny`);
    expect(e.message).toContain(`fails verification: sha256 is`);
    expect(e.message).toContain(`expected ${oid}`);
    const blobs = path.join(cache, 'models--org--tiny', 'blobs');
    expect(fs.readdirSync(blobs)).toEqual([]);
    const snap = path.join(cache, 'models--org--tiny', 'snapshots');
    expect(listFilesRecursive(snap)).toEqual([]);
    // the next pull (no fault) succeeds
    const ok = await hubPull('org/tiny', opts({ include: ['model.safetensors'] }));
    expect(ok.files[0]!.status).toBe('downloaded');
  });

  it('a corrupted regular file fails its git blob sha1 check', async () => {
    seedModel();
    hub.inject({ when: (r) => r.path.endsWith('/config.json') && r.range === undefined, fault: { kind: 'corrupt' } });
    const e = await pullError(hubPull('org/tiny', opts({ include: ['config.json'] })));
    expect(e.kind).toBe('integrity');
    expect(e.message).toContain('git blob sha1 is');
  });

  it('re-downloads a blob whose size is wrong (a damaged cache)', async () => {
    seedModel();
    const first = await hubPull('org/tiny', opts({ include: ['config.json'] }));
    const blob = path.join(first.storageDir, 'blobs', first.files[0]!.blob);
    fs.writeFileSync(blob, 'oops');
    const again = await hubPull('org/tiny', opts({ include: ['config.json'] }));
    expect(again.files[0]!.status).toBe('downloaded');
    expect(fs.readFileSync(path.join(again.snapshotDir, 'config.json')).equals(fs.readFileSync(path.join(model, 'config.json')))).toBe(true);
  });
});

describe('hubPull: hostile listings', () => {
  const evil = [
    { type: 'file' as const, path: '../evil', size: 3, oid: 'a'.repeat(40) },
    { type: 'file' as const, path: '/abs/path', size: 3, oid: 'a'.repeat(40) },
    { type: 'file' as const, path: 'a/../../evil', size: 3, oid: 'a'.repeat(40) },
    { type: 'file' as const, path: 'a\\..\\..\\evil', size: 3, oid: 'a'.repeat(40) },
    { type: 'file' as const, path: 'nul\u0000byte', size: 3, oid: 'a'.repeat(40) },
    { type: 'file' as const, path: 'C:evil', size: 3, oid: 'a'.repeat(40) },
    { type: 'directory' as const, path: '../dir' },
    { type: 'file' as const, path: 'x.bin', size: 3, lfs: { oid: '../../../../tmp/evil', size: 3, pointerSize: 100 } },
  ];
  for (const entry of evil) {
    it(`refuses a listing holding ${JSON.stringify(entry.path)}${entry.lfs ? ' (bad LFS oid)' : ''} and writes nothing`, async () => {
      seedModel();
      hub.extraTreeEntries.push(entry);
      // a private parent so that nothing else (other test files run in parallel) writes beside the cache
      const parent = makeTmpDir('hub-evil');
      const evilCache = path.join(parent, 'cache', 'hub');
      fs.mkdirSync(evilCache, { recursive: true });
      const e = await pullError(hubPull('org/tiny', opts({ cacheDir: evilCache })));
      expect(e.kind).toBe(entry.lfs ? 'protocol' : 'unsafe-path');
      if (!entry.lfs) expect(e.message).toContain(`refusing remote file name ${JSON.stringify(entry.path)}`);
      expect(e.message).toContain('repo org/tiny at revision main');
      const everything: string[] = [];
      const walk = (d: string, rel: string): void => {
        for (const x of fs.readdirSync(d)) {
          everything.push(`${rel}${x}`);
          if (fs.lstatSync(path.join(d, x)).isDirectory()) walk(path.join(d, x), `${rel}${x}/`);
        }
      };
      walk(parent, '');
      expect(everything).toEqual(['cache', 'cache/hub']); // not even the repo folder
      expect(fs.existsSync('/abs/path')).toBe(false);
      expect(hub.requests.filter((r) => r.path.includes('/resolve/'))).toEqual([]);
    });
  }
});
