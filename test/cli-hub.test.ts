/**
 * `moe-tune hub push` then `hub pull` through the CLI against the local mock Hub
 * (test/helpers/hub-server.ts): the push creates the repo and writes a model card with the run's
 * recipe, metrics and expert-load table; the pull prints the snapshot directory whose files equal
 * the pushed ones byte for byte; a transient 503 is retried; a bad token is one error line; the
 * token never appears in any output or file.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRecipe, runPretrainRecipe } from '../src/recipes/index.js';
import { CLI_MAIN, type CliResult } from './helpers/cli.js';
import { findSecret, listFilesRecursive, startMockHub, type MockHub } from './helpers/hub-server.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const root = path.resolve(path.dirname(CLI_MAIN), '../..');
let hub: MockHub;
let work: string;
let runDir: string;

/** The CLI as a child process without blocking this process (the mock Hub answers from here). */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], {
      cwd: root,
      env: { ...process.env, MOE_TUNE_BACKEND: 'js', HOME: work, HF_HOME: path.join(work, 'hf'), HF_TOKEN: hub.token, HF_ENDPOINT: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function noToken(r: CliResult): void {
  expect(r.stdout).not.toContain(hub.token);
  expect(r.stderr).not.toContain(hub.token);
}

beforeAll(async () => {
  hub = await startMockHub();
  work = makeTmpDir('cli-hub');
  runDir = path.join(work, 'run');
  await runPretrainRecipe(loadRecipe('tcmoe-a2-1e-5', { tiny: true, sets: ['train.steps=4', 'eval.max_batches=1'] }), { runDir });
});

afterAll(async () => {
  await hub.close();
});

describe('hub push then pull through the CLI', () => {
  it('pushes a trained model with its card and pulls it back byte for byte', async () => {
    const modelDir = path.join(runDir, 'model');
    const push = await cli(['hub', 'push', modelDir, 'me/tiny-tcmoe', '--endpoint', hub.endpoint, '--message', 'tiny TC-MoE']);
    expect(push.code, push.stderr).toBe(0);
    noToken(push);
    expect(push.stdout).toMatch(new RegExp(`^created ${hub.endpoint}/me/tiny-tcmoe: \\d+ files in commit [0-9a-f]{12} \\(model card from ${runDir}\\)\\n$`));
    expect(hub.repos.has('model:me/tiny-tcmoe')).toBe(true);
    const files = hub.filesAt('me/tiny-tcmoe');
    const card = files.get('README.md')!.content.toString('utf8');
    expect(card).toMatch(/^---\nlibrary_name: transformers\n/);
    expect(card).toContain('recipe:tcmoe-a2-1e-5');
    expect(card).toContain('## Metrics');
    expect(card).toMatch(/\| valPpl \| \d/);
    expect(card).toContain('## Expert load');
    expect(card).toContain('| layer 0 |');
    expect(card).toContain('## Recipe');
    expect(card).toContain('name: tcmoe-a2-1e-5');
    expect(card).toContain('- name: tcmoe-reward');

    // a transient 503 on the first file is retried
    hub.inject({ when: (r) => r.path.endsWith('/config.json') && r.method === 'GET' && r.path.includes('/resolve/'), fault: { kind: 'status', status: 503, retryAfter: '0' } });
    const cache = path.join(work, 'cache');
    const pull = await cli(['hub', 'pull', 'me/tiny-tcmoe', '--endpoint', hub.endpoint, '--cache-dir', cache]);
    expect(pull.code, pull.stderr).toBe(0);
    noToken(pull);
    expect(pull.stderr).toMatch(/moe-tune: warning: .*503.*retrying/);
    const snapshot = pull.stdout.trim();
    expect(snapshot).toMatch(new RegExp(`^${cache}/models--me--tiny-tcmoe/snapshots/[0-9a-f]{40}$`));
    for (const rel of listFilesRecursive(modelDir)) {
      expect(fs.readFileSync(path.join(snapshot, rel)).equals(fs.readFileSync(path.join(modelDir, rel))), rel).toBe(true);
    }
    expect(fs.readFileSync(path.join(snapshot, 'README.md'), 'utf8')).toBe(card);

    // --json, --include; a second pull is served from the cache
    const again = await cli(['hub', 'pull', 'me/tiny-tcmoe', '--endpoint', hub.endpoint, '--cache-dir', cache, '--include', '*.json', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const j = JSON.parse(again.stdout) as { snapshot_dir: string; files: { path: string; status: string }[] };
    expect(j.snapshot_dir).toBe(snapshot);
    expect(j.files.map((f) => f.path).sort()).toEqual(['config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect(j.files.every((f) => f.status === 'cached')).toBe(true);

    // train --model accepts the repo id: pulled into the cache, then fine-tuned
    const ft = await cli(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--model', 'me/tiny-tcmoe', '--endpoint', hub.endpoint, '--cache-dir', cache,
      '--set', 'surgery=[]', '--set', 'aux_losses=[]', '--set', 'lora.targets=[w1, w2, w3]', '--steps', '2', '--set', 'data.samples=40', '--out', path.join(work, 'ft')]);
    expect(ft.code, ft.stderr).toBe(0);
    expect(ft.stdout).toContain('pulled me/tiny-tcmoe@');
    expect(ft.stdout).toContain(`model: ${path.join(work, 'ft', 'final', 'model')}`);

    expect(findSecret(work, hub.token)).toEqual([]);
  });

  it('a wrong token is one error line that never shows the token; nothing is pushed', async () => {
    const bad = 'hf_thisIsNotTheRightTokenAtAll0123';
    const r = await cli(['hub', 'push', path.join(runDir, 'model'), 'me/other', '--endpoint', hub.endpoint], { HF_TOKEN: bad });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('moe-tune: warning:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^moe-tune: .*401/);
    expect(r.stderr + r.stdout).not.toContain(bad);
    expect(hub.repos.has('model:me/other')).toBe(false);
    const missing = await cli(['hub', 'pull', 'me/does-not-exist', '--endpoint', hub.endpoint, '--cache-dir', path.join(work, 'cache2')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/404|not found/i);
  });
});
