/**
 * Issue 18, items 20 and 5 (info): limits checked before they bite. Before the change eval scored a
 * sequence longer than max_position_embeddings (RoPE past its range; a 2.6M-token line ran 15 min),
 * `--router top-k:k=100` on 4 experts ran as top-4, `info` printed a config.json that its tensors
 * contradict with exit 0, a tokenizer with more ids than the embedding failed only at the first
 * such id, and `info` on a 4-bit model counted packed bytes as parameters (about 1/8 of the float
 * base's count at 4 bits per weight).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/models/load.js';
import { inspectModel } from '../src/eval/model-info.js';
import { quantizeModel, saveQuantizedModel } from '../src/quant/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral'); // 4 experts, vocab 320, max_position_embeddings 256

function copyDir(from: string, to: string, config: (c: Record<string, unknown>) => void): string {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
  const c = JSON.parse(fs.readFileSync(path.join(to, 'config.json'), 'utf8')) as Record<string, unknown>;
  config(c);
  fs.writeFileSync(path.join(to, 'config.json'), JSON.stringify(c));
  return to;
}

describe('limits are checked', () => {
  it('eval refuses a sequence longer than max_position_embeddings, naming the line', () => {
    const dir = makeTmpDir('long-seq');
    const data = path.join(dir, 'long.jsonl');
    fs.writeFileSync(data, `${JSON.stringify({ input_ids: [1, 2, 3] })}\n${JSON.stringify({ input_ids: Array.from({ length: 257 }, (_, i) => 3 + (i % 300)) })}\n`);
    const line = expectOneErrorLine(runCli(['eval', '--model', MIXTRAL, '--data', data]));
    expect(line).toBe(`moe-tune: ${data}:2: 257 tokens, longer than the model's max_position_embeddings 256 (split the text into shorter lines, or score it in sliding windows with --stride)`);
    // a multiple-choice item too
    const mc = path.join(dir, 'mc.jsonl');
    fs.writeFileSync(mc, `${JSON.stringify({ context_ids: Array.from({ length: 250 }, (_, i) => 3 + i), choice_ids: [[5, 6], Array.from({ length: 10 }, () => 7)], label: 0 })}\n`);
    expect(expectOneErrorLine(runCli(['eval', '--model', MIXTRAL, '--data', mc, '--task', 'mc']))).toBe(`moe-tune: ${mc}:1: context + choice is 259 tokens, longer than the model's max_position_embeddings 256`);
    // exactly the limit is fine
    fs.writeFileSync(data, `${JSON.stringify({ input_ids: Array.from({ length: 256 }, (_, i) => 3 + (i % 300)) })}\n`);
    expect(runCliJson<{ tokens: number }>(['eval', '--model', MIXTRAL, '--data', data, '--json']).tokens).toBe(255);
  });

  it('a router k beyond the experts is refused', () => {
    const dir = makeTmpDir('router-k');
    const data = path.join(dir, 'ids.jsonl');
    fs.writeFileSync(data, `${JSON.stringify({ input_ids: [1, 5, 9, 12] })}\n`);
    expect(expectOneErrorLine(runCli(['eval', '--model', MIXTRAL, '--data', data, '--router', 'top-k:k=100'])))
      .toBe("moe-tune: router 'top-k': k = 100 is more than the 4 experts layer 0 chooses from");
    expect(runCliJson<{ load: number }>(['eval', '--model', MIXTRAL, '--data', data, '--router', 'top-k:k=4', '--json']).load).toBe(4);
  });

  it('info refuses config values the tensors contradict', () => {
    const root = makeTmpDir('contradict');
    const vocab = copyDir(MIXTRAL, path.join(root, 'vocab'), (c) => { c['vocab_size'] = 300; });
    expect(expectOneErrorLine(runCli(['info', '--model', vocab]))).toMatch(/tensor 'model\.embed_tokens\.weight' has shape \[320, \d+\], expected \[300, \d+\]/);
    const experts = copyDir(MIXTRAL, path.join(root, 'experts'), (c) => { c['num_local_experts'] = 8; });
    expect(expectOneErrorLine(runCli(['info', '--model', experts]))).toMatch(/block_sparse_moe\.gate\.weight' has shape \[4, \d+\], expected \[8, \d+\]|missing tensor 'model\.layers\.0\.block_sparse_moe\.experts\.4\./);
    expect(runCli(['info', '--model', MIXTRAL]).code).toBe(0);
  });

  it('a tokenizer with more ids than the embedding is refused at load', async () => {
    const dir = makeTmpDir('tok-big');
    const model = await writeTinyCheckpoint(dir, tinyMixtralConfig()); // vocab 96
    writeTinyTokenizer(dir); // 300 ids
    const msg = `${path.join(dir, 'tokenizer.json')}: the tokenizer has 300 ids, more than the model's vocab_size 96 in config.json (the embedding has 96 rows)`;
    expect(() => loadModel(dir)).toThrow(msg);
    expect(() => inspectModel(dir)).toThrow(msg);
    // a saved 4-bit model is checked the same way when a command opens it
    const qdir = makeTmpDir('tok-big-nf4');
    quantizeModel(model);
    await saveQuantizedModel(model, qdir, { force: true });
    writeTinyTokenizer(qdir);
    const data = path.join(qdir, 'ids.jsonl');
    fs.writeFileSync(data, '{"input_ids": [1, 2, 3]}\n');
    expect(expectOneErrorLine(runCli(['eval', '--model', qdir, '--data', data]))).toBe(`moe-tune: ${path.join(qdir, 'tokenizer.json')}: the tokenizer has 300 ids, more than the model's vocab_size 96 in config.json (the embedding has 96 rows)`);
  });

  it('info counts a 4-bit model\'s parameters as its float base, packed bytes apart', async () => {
    const root = makeTmpDir('info-4bit');
    const fdir = path.join(root, 'float');
    const model = await writeTinyCheckpoint(fdir, tinyMixtralConfig({ hidden_size: 64, intermediate_size: 64 }));
    quantizeModel(model);
    const qdir = path.join(root, 'nf4');
    await saveQuantizedModel(model, qdir);
    const f = runCliJson<{ parameters: { total: number; expert: number; active_per_token: number }; packed_4bit: null }>(['info', '--model', fdir, '--json']);
    const q = runCliJson<{ parameters: { total: number; expert: number; active_per_token: number }; packed_4bit: { weights: number; parameters: number; bytes: number } }>(['info', '--model', qdir, '--json']);
    expect(q.parameters).toEqual(f.parameters);
    expect(f.packed_4bit).toBeNull();
    // every linear of 2 layers (q, k, v, o + 4 experts x 3) is NF4; the router gates stay float
    expect(q.packed_4bit.weights).toBe(2 * (4 + 4 * 3));
    expect(q.packed_4bit.bytes).toBeLessThan(q.packed_4bit.parameters); // about half a byte each, plus absmax
    expect(q.packed_4bit.bytes).toBeGreaterThan(q.packed_4bit.parameters / 2);
  });
});
