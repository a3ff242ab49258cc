import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { hubPush, type HubPushOptions } from '../src/hub/push.js';
import { hubPull } from '../src/hub/pull.js';
import { renderModelCard } from '../src/hub/model-card.js';
import type { HubError } from '../src/hub/hub-error.js';
import { expectHubError } from './helpers/hub-error.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { findSecret, listFilesRecursive, startMockHub, writeTinyAdapterDir, writeTinyModelDir, type MockHub } from './helpers/hub-server.js';

let hub: MockHub;
let work: string;
const noSleep = async (): Promise<void> => undefined;

function opts(over: HubPushOptions = {}): HubPushOptions {
  return { endpoint: hub.endpoint, token: hub.token, env: { HOME: work }, sleep: noSleep, ...over };
}

const pushError = (p: Promise<unknown>): Promise<HubError> => expectHubError(p, hub.token);

/** Pulls `repo` into a fresh cache and checks every file of `dir` comes back byte for byte. */
async function expectRoundTrip(dir: string, repo: string): Promise<string> {
  const cache = makeTmpDir('hub-rt-cache');
  const res = await hubPull(repo, { endpoint: hub.endpoint, token: hub.token, cacheDir: cache, env: { HOME: work } });
  const pushed = listFilesRecursive(dir);
  const pulled = listFilesRecursive(res.snapshotDir);
  for (const rel of pushed) {
    expect(pulled).toContain(rel);
    const a = fs.readFileSync(path.join(dir, rel));
    const b = fs.readFileSync(path.join(res.snapshotDir, rel));
    expect(b.equals(a), rel).toBe(true);
  }
  expect(findSecret(cache, hub.token)).toEqual([]);
  return res.snapshotDir;
}

beforeEach(async () => {
  hub = await startMockHub();
  work = makeTmpDir('hub-push');
});

afterEach(async () => {
  await hub.close();
});

describe('hubPush', () => {
  it('creates the repo, uploads a model (LFS for weights), writes the card, and pulls back byte-exactly', async () => {
    const dir = path.join(work, 'model');
    writeTinyModelDir(dir);
    const card = renderModelCard({
      repo: 'org/tiny-moe',
      baseModel: 'mistralai/Mixtral-8x7B-v0.1',
      tags: ['mixtral', 'adamoe'],
      metrics: { 'eval/ppl': 12.345678, 'eval/acc': 0.5 },
      loadTable: [
        [0.25, 0.25, 0.25, 0.25],
        [0.5, 0.3, 0.1, 0.1],
      ],
      recipe: { model: 'mixtral-tiny', lr: 1e-4, null_experts: 8, top_k: 3 },
    });
    const phases: string[] = [];
    const res = await hubPush(dir, 'org/tiny-moe', opts({ modelCard: card, private: true, commitMessage: 'first', onProgress: (e) => void (e.type === 'phase' && phases.push(e.phase)) }));
    expect(res.created).toBe(true);
    expect(res.repo).toBe('org/tiny-moe');
    expect(res.url).toBe(`${hub.endpoint}/org/tiny-moe`);
    expect(res.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(res.files).toEqual([...listFilesRecursive(dir), 'README.md'].sort());
    expect(phases).toEqual(['preuploading', 'uploadingLargeFiles', 'committing']);
    expect(hub.repos.get('model:org/tiny-moe')!.private).toBe(true);

    const stored = hub.filesAt('org/tiny-moe');
    expect(stored.get('model.safetensors')!.lfs).toBe(true);
    expect(stored.get('config.json')!.lfs).toBe(false);
    expect(stored.get('README.md')!.content.toString('utf8')).toBe(card);
    const weights = fs.readFileSync(path.join(dir, 'model.safetensors'));
    expect(hub.lfsObjects.get(createHash('sha256').update(weights).digest('hex'))!.equals(weights)).toBe(true);
    // LFS bytes went to the pre-signed CDN URL without the token
    const puts = hub.requests.filter((r) => r.origin === 'cdn' && r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.authorization).toBe(false);
    expect(hub.unhandled).toEqual([]);

    const snap = await expectRoundTrip(dir, 'org/tiny-moe');
    const readme = fs.readFileSync(path.join(snap, 'README.md'), 'utf8');
    const front = parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(readme)![1]!) as Record<string, unknown>;
    expect(front['base_model']).toBe('mistralai/Mixtral-8x7B-v0.1');
    expect(front['tags']).toEqual(['moe-tune', 'mixtral', 'adamoe']);
  });

  it('pushes an adapter into an existing repo (routing a small binary file to LFS) and round-trips it', async () => {
    hub.seed('org/adapter', { 'README.md': 'old card\n', 'stale.txt': 'kept\n' });
    const dir = path.join(work, 'adapter');
    writeTinyAdapterDir(dir);
    const res = await hubPush(dir, 'org/adapter', opts());
    expect(res.created).toBe(false);
    const stored = hub.filesAt('org/adapter');
    expect(stored.get('router_state.dat')!.lfs).toBe(true); // NUL bytes in the sample: binary
    expect(stored.get('adapter_config.json')!.lfs).toBe(false);
    expect(stored.get('README.md')!.content.toString()).toBe('old card\n'); // no card given: untouched
    await expectRoundTrip(dir, 'org/adapter');
    // pushing the same content again uploads no LFS bytes (the server already has them)
    const putsBefore = hub.requests.filter((r) => r.method === 'PUT').length;
    await hubPush(dir, 'org/adapter', opts());
    expect(hub.requests.filter((r) => r.method === 'PUT').length).toBe(putsBefore);
  });

  it('pushes a pulled snapshot (symlinked files) and fills in the user namespace from whoami', async () => {
    const dir = path.join(work, 'model');
    writeTinyModelDir(dir);
    await hubPush(dir, 'org/src', opts());
    const cache = makeTmpDir('hub-snap');
    const pulled = await hubPull('org/src', { endpoint: hub.endpoint, token: hub.token, cacheDir: cache, env: { HOME: work } });
    const res = await hubPush(pulled.snapshotDir, 'copy', opts());
    expect(res.repo).toBe('tester/copy');
    expect(hub.requests.some((r) => r.path === '/api/whoami-v2')).toBe(true);
    await expectRoundTrip(dir, 'tester/copy');
  });

  it('needs a token, and a rejected token is one clear 401 line', async () => {
    const dir = path.join(work, 'adapter');
    writeTinyAdapterDir(dir);
    const none = await pushError(hubPush(dir, 'org/x', { endpoint: hub.endpoint, env: { HOME: work } }));
    expect(none.kind).toBe('auth');
    expect(none.message).toBe(`pushing to ${hub.endpoint} needs a token: set HF_TOKEN (or log in with \`huggingface-cli login\`) to a token with write access`);
    expect(hub.requests).toEqual([]);
    const wrong = 'hf_notTheRightOne123456789';
    const bad = await pushError(hubPush(dir, 'org/x', opts({ token: wrong })));
    expect(bad.kind).toBe('auth');
    expect(bad.message).toContain(`authentication failed for ${hub.endpoint} (HTTP 401 on repo creation)`);
    expect(bad.message).not.toContain(wrong);
  });

  it('takes the token from HF_TOKEN, then from the token file', async () => {
    const dir = path.join(work, 'adapter');
    writeTinyAdapterDir(dir);
    await hubPush(dir, 'org/env', { endpoint: hub.endpoint, env: { HOME: work, HF_TOKEN: hub.token } });
    const home = path.join(work, 'hfhome');
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'token'), `${hub.token}\n`);
    await hubPush(dir, 'org/file', { endpoint: hub.endpoint, env: { HOME: work, HF_HOME: home } });
    expect(hub.filesAt('org/file').has('adapter_config.json')).toBe(true);
  });

  it('retries a transient 503 on the commit and on the LFS upload', async () => {
    const dir = path.join(work, 'model');
    writeTinyModelDir(dir);
    hub.inject({ when: (r) => r.path.includes('/commit/'), fault: { kind: 'status', status: 503 } });
    hub.inject({ when: (r) => r.origin === 'cdn' && r.method === 'PUT', fault: { kind: 'status', status: 500 } });
    const retried: string[] = [];
    await hubPush(dir, 'org/retry', opts({ onRetry: (e) => void retried.push(e.what) }));
    expect(retried.sort()).toEqual([`a storage request to ${hub.cdnOrigin}`, 'the upload to repo org/retry branch main'].sort());
    await expectRoundTrip(dir, 'org/retry');
  });

  it('refuses a directory holding the token, and never writes the token anywhere', async () => {
    const dir = path.join(work, 'adapter');
    writeTinyAdapterDir(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), `my token is ${hub.token}\n`);
    const e = await pushError(hubPush(dir, 'org/leak', opts()));
    expect(e.kind).toBe('bad-input');
    expect(e.message).toBe(`${path.join(dir, 'notes.txt')}: refusing to upload a file that contains your Hugging Face token; remove it from the directory`);
    expect(hub.repos.has('model:org/leak')).toBe(false);
    fs.rmSync(path.join(dir, 'notes.txt'));
    await hubPush(dir, 'org/leak', opts());
    for (const f of hub.filesAt('org/leak').values()) expect(f.content.includes(Buffer.from(hub.token))).toBe(false);
    expect(findSecret(dir, hub.token)).toEqual([]);
  });

  it('prints nothing: no output at all, so no token in output, across a failing and a working push and pull', async () => {
    const dir = path.join(work, 'adapter');
    writeTinyAdapterDir(dir);
    const captured: string[] = [];
    const grab = ((...args: unknown[]) => {
      captured.push(args.map(String).join(' '));
      return true;
    }) as typeof process.stdout.write;
    const saved = { out: process.stdout.write, err: process.stderr.write, log: console.log, warn: console.warn, error: console.error, debug: console.debug, info: console.info };
    process.stdout.write = grab;
    process.stderr.write = grab;
    console.log = console.warn = console.error = console.debug = console.info = (...a: unknown[]) => void captured.push(a.map(String).join(' '));
    try {
      await hubPush(dir, 'org/quiet', opts({ token: 'hf_wrongButSecret99999' })).catch(() => undefined);
      await hubPush(dir, 'org/quiet', opts());
      await hubPull('org/quiet', { endpoint: hub.endpoint, token: hub.token, cacheDir: makeTmpDir('hub-quiet'), env: { HOME: work } });
    } finally {
      process.stdout.write = saved.out;
      process.stderr.write = saved.err;
      Object.assign(console, { log: saved.log, warn: saved.warn, error: saved.error, debug: saved.debug, info: saved.info });
    }
    expect(captured).toEqual([]);
  });

  it('bad directories are one clear line', async () => {
    const missing = path.join(work, 'nope');
    const e = await pushError(hubPush(missing, 'org/x', opts()));
    expect(e.message).toBe(`${missing}: directory to push does not exist`);
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    const e2 = await pushError(hubPush(empty, 'org/x', opts()));
    expect(e2.message).toBe(`${empty}: nothing to push (no files)`);
  });
});
