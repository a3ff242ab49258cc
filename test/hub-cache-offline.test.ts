/**
 * A pulled repo needs no network (issue 18, item 6): `info`, `eval` and `train --model org/name` resolve a Hub id
 * through the cache, HF_HUB_OFFLINE=1 makes no request at all (and is one clear line for a repo not in the cache),
 * and an unreachable Hub falls back to the cached snapshot with a warning, as huggingface_hub does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hubPull } from '../src/hub/pull.js';
import { expectOneErrorLine, runCli } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { startMockHub, type MockHub } from './helpers/hub-server.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';

let hub: MockHub;
let cache: string;
let commit: string;
let deadEndpoint: string;
const env = (): Record<string, string> => ({ HF_HUB_CACHE: cache, HF_TOKEN: '', HF_HOME: makeTmpDir('hf-home') });

beforeAll(async () => {
  hub = await startMockHub();
  const src = makeTmpDir('offline-model');
  for (const f of fs.readdirSync(path.join(FIXTURES, 'tiny-mixtral'))) fs.copyFileSync(path.join(FIXTURES, 'tiny-mixtral', f), path.join(src, f));
  writeTinyTokenizer(src);
  const files: Record<string, Buffer> = {};
  for (const f of fs.readdirSync(src)) files[f] = fs.readFileSync(path.join(src, f));
  commit = hub.seed('org/tiny', files);
  cache = makeTmpDir('offline-cache');
  // in this process: a CLI child run with spawnSync would block the event loop that serves the mock Hub
  const pulled = await hubPull('org/tiny', { endpoint: hub.endpoint, cacheDir: cache, env: { HOME: cache } });
  expect(pulled.commit).toBe(commit);
  deadEndpoint = hub.endpoint;
  await hub.close(); // from here on there is no Hub
}, 120_000);

afterAll(async () => {
  await hub.close().catch(() => undefined);
});

describe('a Hub id resolved through the cache', () => {
  it('info --model org/tiny with HF_HUB_OFFLINE=1: the cached snapshot, no request', () => {
    const r = runCli(['info', '--model', 'org/tiny', '--json'], { env: { ...env(), HF_HUB_OFFLINE: '1', HF_ENDPOINT: deadEndpoint } });
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { model: string; architecture: string };
    expect(info.model).toBe(path.join(cache, 'models--org--tiny', 'snapshots', commit));
    expect(info.architecture).toBe('MixtralForCausalLM');
  });

  it('eval --model org/tiny with HF_HUB_OFFLINE=1 scores the data', () => {
    const r = runCli(['eval', '--model', 'org/tiny', '--data', path.join(FIXTURES, 'ids.jsonl'), '--json'], { env: { ...env(), HF_HUB_OFFLINE: '1' } });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number; nll: number };
    expect(out.tokens).toBeGreaterThan(0);
    expect(Number.isFinite(out.nll)).toBe(true);
  });

  it('info with the Hub unreachable (no HF_HUB_OFFLINE): one quick try, then the cached snapshot with a warning', () => {
    const t0 = Date.now();
    const r = runCli(['info', '--model', 'org/tiny', '--json'], { env: { ...env(), HF_ENDPOINT: deadEndpoint } });
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/moe-tune: warning: .*using the cached snapshot of org\/tiny@/);
  });

  it('train --model org/tiny with HF_HUB_OFFLINE=1 trains from the cached snapshot', () => {
    const data = path.join(makeTmpDir('offline-data'), 'data.jsonl');
    fs.writeFileSync(data, Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `the quick brown fox ${i} jumps over the lazy dog number ${i * 7}` })).join('\n'));
    const out = path.join(makeTmpDir('offline-run'), 'run');
    const r = runCli(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--model', 'org/tiny', '--data', data, '--steps', '1', '--set', 'eval.max_batches=1', '--out', out, '--json'],
      { env: { ...env(), HF_HUB_OFFLINE: '1' }, timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { seeds: { steps: number }[] }).seeds[0]!.steps).toBe(1);
  }, 200_000);

  it('HF_HUB_OFFLINE=1 and a repo not in the cache: one line naming HF_HUB_OFFLINE', () => {
    const line = expectOneErrorLine(runCli(['info', '--model', 'org/absent'], { env: { ...env(), HF_HUB_OFFLINE: '1' } }));
    expect(line).toMatch(/org\/absent: revision main is not in the Hub cache \(.*\) and HF_HUB_OFFLINE is set/);
  });

  it('hubPull with HF_HUB_OFFLINE=1 returns the cached snapshot (filters applied) without a request', async () => {
    const r = await hubPull('org/tiny', { cacheDir: cache, endpoint: deadEndpoint, env: { HOME: cache, HF_HUB_OFFLINE: 'true' }, include: ['*.json'] });
    expect(r.commit).toBe(commit);
    expect(r.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors.index.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'].filter((f) => fs.existsSync(path.join(r.snapshotDir, f))));
    expect(r.files.every((f) => f.status === 'cached')).toBe(true);
  });
});
