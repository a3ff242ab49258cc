/**
 * Generation: decoding with the KV cache gives the same next-token logits (and so the same greedy
 * tokens) as a full forward pass over the whole sequence at every step; sampling is seeded;
 * nucleus selection; stop strings and EOS; the CLI's --json output.
 */
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MoeTokenizer } from '../src/data/tokenizer.js';
import { generate } from '../src/eval/generate.js';
import { nucleus, sampleToken } from '../src/eval/sampling.js';
import { loadModel } from '../src/models/load.js';
import { noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { tinyLlamaConfig, tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

/** Greedy generation by the test's own loop: full forward over the sequence, argmax of the last row. */
function plainGreedy(model: ReturnType<typeof loadModel>['model'], prompt: number[], n: number): { ids: number[]; logits: Float32Array[] } {
  const seq = [...prompt];
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  const V = model.config.vocabSize;
  for (let s = 0; s < n; s++) {
    withScope(() => noGrad(() => {
      const out = model.forward(new Tensor(Int32Array.from(seq), [1, seq.length])).f;
      const row = Float32Array.from(out.subarray((seq.length - 1) * V, seq.length * V));
      logits.push(row);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i]! > row[best]!) best = i;
      ids.push(best);
      seq.push(best);
    }));
  }
  return { ids, logits };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('KV-cache decoding equals full-forward decoding', () => {
  for (const name of ['tiny-mixtral', 'tiny-llama']) {
    it(`${name}: same logits at every step, same greedy tokens`, () => {
      const { model } = loadModel(path.join(FIXTURES, name));
      const prompt = [1, 17, 230, 45, 9];
      const n = 12;
      const ref = plainGreedy(model, prompt, n);
      const cached: Float32Array[] = [];
      const full: Float32Array[] = [];
      const a = generate(model, prompt, { maxNewTokens: n, eosTokenIds: [], onLogits: (_s, l) => cached.push(l) });
      const b = generate(model, prompt, { maxNewTokens: n, eosTokenIds: [], useCache: false, onLogits: (_s, l) => full.push(l) });
      expect(a.ids).toEqual(ref.ids);
      expect(b.ids).toEqual(ref.ids);
      expect(cached).toHaveLength(n);
      for (let s = 0; s < n; s++) {
        expect(maxAbsDiff(cached[s]!, ref.logits[s]!)).toBeLessThan(1e-4);
        expect(maxAbsDiff(full[s]!, ref.logits[s]!)).toBeLessThan(1e-5);
      }
      expect(a.finishReason).toBe('length');
    });
  }

  it('sampled decoding with the cache matches sampling without it (same seed)', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-mixtral'));
    const opts = { maxNewTokens: 10, temperature: 1.5, topP: 0.95, seed: 11, eosTokenIds: [] as number[] };
    const a = generate(model, [1, 2, 3], opts);
    const b = generate(model, [1, 2, 3], { ...opts, useCache: false });
    expect(a.ids).toEqual(b.ids);
    expect(generate(model, [1, 2, 3], opts).ids).toEqual(a.ids);
  });
});

describe('sampling', () => {
  it('nucleus keeps the smallest most-likely set reaching p (at least one token)', () => {
    const probs = Float64Array.from([0.1, 0.5, 0.15, 0.25]);
    expect(nucleus(probs, 0.5)).toEqual([1]);
    expect(nucleus(probs, 0.6)).toEqual([1, 3]);
    expect(nucleus(probs, 0.9)).toEqual([1, 3, 2]);
    expect(nucleus(probs, 0.01)).toEqual([1]);
    expect(nucleus(probs, 1)).toEqual([1, 3, 2, 0]);
  });

  it('sample frequencies follow softmax(logits / T) inside the nucleus', () => {
    const logits = [Math.log(0.1), Math.log(0.5), Math.log(0.15), Math.log(0.25)];
    const rng = new Rng(5);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 1, topP: 0.6 }, rng)]!++;
    expect(counts[0]).toBe(0);
    expect(counts[2]).toBe(0);
    expect(counts[1]! / n).toBeCloseTo(0.5 / 0.75, 1);
    expect(counts[3]! / n).toBeCloseTo(0.25 / 0.75, 1);
    expect(sampleToken(logits, { temperature: 0, topP: 1 }, rng)).toBe(1);
  });
});

describe('stop strings, EOS and the generate command', () => {
  const root = makeTmpDir('eval-generate');
  const dir = path.join(root, 'model');
  let tok: MoeTokenizer;

  beforeAll(async () => {
    await writeTinyCheckpoint(dir, tinyLlamaConfig({ vocab_size: 300, bos_token_id: 0, eos_token_id: 1 }), { seed: 3, std: 0.2 });
    tok = writeTinyTokenizer(dir, true);
  });

  it('a stop string cuts the text before it; EOS ends generation and is not output', () => {
    const { model } = loadModel(dir);
    const prompt = tok.encode('The quick brown');
    const decode = (ids: number[]) => tok.decode(ids, { skipSpecial: true });
    const free = generate(model, prompt, { maxNewTokens: 16, eosTokenIds: [], decode });
    expect(free.ids).toHaveLength(16);
    // stop at the text of the 5th generated token: the output ends right before it
    const fifth = decode(free.ids.slice(0, 5));
    const stopText = fifth.slice(decode(free.ids.slice(0, 4)).length);
    expect(stopText.length).toBeGreaterThan(0);
    const stopped = generate(model, prompt, { maxNewTokens: 16, eosTokenIds: [], decode, stop: [stopText] });
    expect(stopped.finishReason).toBe('stop');
    expect(free.text!.startsWith(stopped.text!)).toBe(true);
    expect(stopped.text!.includes(stopText)).toBe(false);
    expect(stopped.ids.length).toBeLessThanOrEqual(5);
    // make the 3rd greedy token the EOS: generation stops after 2 tokens
    const eosRun = generate(model, prompt, { maxNewTokens: 16, eosTokenIds: [free.ids[2]!], decode });
    expect(eosRun.finishReason).toBe('eos');
    expect(eosRun.ids).toEqual(free.ids.slice(0, free.ids.indexOf(free.ids[2]!)));
  });

  it('generate --json with a text prompt equals the library call', () => {
    const { model } = loadModel(dir);
    const out = runCliJson<{ ids: number[]; text: string; prompt_ids: number[]; finish_reason: string; kv_cache: boolean }>(
      ['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-new-tokens', '6', '--json']);
    expect(out.prompt_ids).toEqual(tok.encode('Once upon a time'));
    const lib = generate(model, out.prompt_ids, { maxNewTokens: 6, eosTokenIds: [tok.eosId!], decode: (ids) => tok.decode(ids, { skipSpecial: true }) });
    expect(out.ids).toEqual(lib.ids);
    expect(out.text).toBe(lib.text);
    expect(out.kv_cache).toBe(true);
    const noCache = runCliJson<{ ids: number[] }>(['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-new-tokens', '6', '--no-cache', '--json']);
    expect(noCache.ids).toEqual(out.ids);
  });

  it('seeded sampling through the CLI is reproducible; the load is reported for MoE models', async () => {
    const moe = path.join(root, 'moe');
    await writeTinyCheckpoint(moe, tinyMixtralConfig());
    const args = ['generate', '--model', moe, '--prompt-ids', '1,5,9', '--max-new-tokens', '8', '--temperature', '0.9', '--top-p', '0.8', '--seed', '4', '--json'];
    const a = runCliJson<{ ids: number[]; load: number }>(args);
    const b = runCliJson<{ ids: number[] }>(args);
    expect(a.ids).toEqual(b.ids);
    expect(a.load).toBe(2);
  });

  it('bad generate input is one error line', () => {
    expect(expectOneErrorLine(runCli(['generate', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--prompt', 'hi']))).toContain('tokenizer.json');
    expect(expectOneErrorLine(runCli(['generate', '--model', dir]))).toMatch(/exactly one of --prompt/);
    expect(expectOneErrorLine(runCli(['generate', '--model', dir, '--prompt-ids', '1,x']))).toMatch(/--prompt-ids: "prompt-ids"\[1\] = "x" is not a token id/);
    expect(expectOneErrorLine(runCli(['generate', '--model', dir, '--prompt', 'a', '--top-p', '2']))).toMatch(/--top-p <p>' argument '2' is invalid/);
    expect(expectOneErrorLine(runCli(['generate', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--prompt-ids', '1', '--router', 'expert-choice']))).toMatch(/not causal/);
  });
});
