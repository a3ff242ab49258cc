/**
 * Cross-check with the Python client: the project's venv (test/helpers/python.ts python5(), which .ci/run makes and
 * which holds huggingface_hub as a dependency of transformers), else MOE_TUNE_HF_PYTHON; skipped with one line
 * when neither has huggingface_hub: Python's snapshot_download against the same mock server must
 * lay out the cache exactly as hubPull does, Python must read our cache offline, and we must reuse Python's blobs.
 * Linux only (the mock CDN listens on 127.0.0.2 so that Python sees another host and stops at the redirect, as it
 * does with the real Hub's CDN).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { hubPull } from '../src/hub/pull.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { listFilesRecursive, startMockHub, writeTinyModelDir, type MockHub } from './helpers/hub-server.js';
import { python5 } from './helpers/python.js';

const venv = python5('hub-python-interop');
const python = process.env['MOE_TUNE_HF_PYTHON'] ?? venv.python;
const probe = process.platform === 'linux' ? spawnSync(python, ['-c', 'import huggingface_hub; print(huggingface_hub.__version__)'], { encoding: 'utf8' }) : undefined;
const available = probe !== undefined && probe.status === 0;
if (!available) {
  console.log(`hub-python-interop: skipped (no ${python} with huggingface_hub${process.platform === 'linux' ? '' : ', or not Linux'}; ${venv.available ? 'set MOE_TUNE_HF_PYTHON' : venv.skipLine})`);
}

function runPython(code: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (codeNum) => {
      clearTimeout(timer);
      if (codeNum === 0) resolve(out.trim());
      else reject(new Error(`python failed (${codeNum}): ${err.slice(-2000)}`));
    });
  });
}

/** Every entry of a repo's cache folder: type, path, symlink target (Python's trees/ listing cache left out). */
function layout(storage: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string): void => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (r === 'trees' || r === '.locks') continue;
      const a = path.join(abs, e.name);
      if (e.isSymbolicLink()) out.push(`l ${r} -> ${fs.readlinkSync(a)}`);
      else if (e.isDirectory()) {
        out.push(`d ${r}`);
        walk(a, r);
      } else out.push(`f ${r} ${fs.statSync(a).size}`);
    }
  };
  walk(storage, '');
  return out.sort();
}

describe.skipIf(!available)('hub cache: interoperability with the Python huggingface_hub client', () => {
  let hub: MockHub;
  let commit: string;
  beforeAll(async () => {
    hub = await startMockHub({ cdnHost: '127.0.0.2' });
    const model = makeTmpDir('hub-py-model');
    writeTinyModelDir(model);
    const files: Record<string, Buffer> = {};
    for (const rel of listFilesRecursive(model)) files[rel] = fs.readFileSync(path.join(model, rel));
    commit = hub.seed('org/tiny', files);
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('Python and hubPull produce the same cache; each reads the other', async () => {
    const ours = makeTmpDir('hub-py-ours');
    const theirs = makeTmpDir('hub-py-theirs');
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_DISABLE_XET: '1', HF_HUB_DISABLE_TELEMETRY: '1', HF_TOKEN: '', HF_HOME: makeTmpDir('hub-py-home') };
    const snap = await runPython(`from huggingface_hub import snapshot_download\nprint(snapshot_download('org/tiny', cache_dir=${JSON.stringify(theirs)}))`, env);
    expect(snap).toBe(path.join(theirs, 'models--org--tiny', 'snapshots', commit));

    const res = await hubPull('org/tiny', { endpoint: hub.endpoint, cacheDir: ours, env: { HOME: ours } });
    expect(layout(path.join(ours, 'models--org--tiny'))).toEqual(layout(path.join(theirs, 'models--org--tiny')));

    // Python reads our cache with no network
    const offline = await runPython(
      `from huggingface_hub import snapshot_download, hf_hub_download\nprint(snapshot_download('org/tiny', cache_dir=${JSON.stringify(ours)}, local_files_only=True))\nprint(hf_hub_download('org/tiny', 'tokenizer/vocab.json', cache_dir=${JSON.stringify(ours)}, local_files_only=True))`,
      { ...env, HF_HUB_OFFLINE: '1' },
    );
    expect(offline.split('\n')).toEqual([res.snapshotDir, path.join(res.snapshotDir, 'tokenizer', 'vocab.json')]);

    // we reuse Python's blobs: nothing is downloaded again
    const reuse = await hubPull('org/tiny', { endpoint: hub.endpoint, cacheDir: theirs, env: { HOME: theirs } });
    expect(reuse.files.every((f) => f.status === 'cached')).toBe(true);
  });
});
