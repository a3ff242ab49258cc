/**
 * Strided sliding-window perplexity (src/eval/sliding-windows.ts, `eval --max-length / --stride`): the window
 * set and masks as golden values; the perplexity of the windows equals a plain per-window log-softmax loop;
 * windows at least as long as the sequence change nothing; and the CLI's NLL and token count equal
 * transformers' own strided loop (Hugging Face's "Perplexity of fixed-length models") on the reference fixtures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { perplexity } from '../src/eval/perplexity.js';
import { slidingWindows } from '../src/eval/sliding-windows.js';
import { loadModel } from '../src/models/load.js';
import { noGrad, ops, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { python5, runPythonJson } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const seqOf = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => 3 + ((i * 37 + seed * 11) % 300));
const bits = (m: Uint8Array): string => Array.from(m).join('');

describe('slidingWindows', () => {
  it('overlapping windows score each token once, with max length - stride tokens of context after the first', () => {
    const w = slidingWindows([seqOf(10, 1)], { maxLength: 4, stride: 2 });
    expect(w.map((x) => x.ids.length)).toEqual([4, 4, 4, 4]);
    expect(w.map((x) => bits(x.mask))).toEqual(['0111', '0011', '0011', '0011']);
    expect(w[1]!.ids).toEqual(seqOf(10, 1).slice(2, 6));
    expect(w.reduce((n, x) => n + x.mask.reduce((a, b) => a + b, 0), 0)).toBe(9);
  });

  it('disjoint windows (stride = max length) leave each window\'s first token as context, as the guide does', () => {
    const w = slidingWindows([seqOf(10, 1), seqOf(3, 2)], { maxLength: 4, stride: 4 });
    expect(w.map((x) => [x.source, bits(x.mask)])).toEqual([[0, '0111'], [0, '0111'], [0, '01'], [1, '011']]);
  });

  it('a prompt mask stays: context tokens are never scored', () => {
    const mask = Uint8Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    const w = slidingWindows([seqOf(10, 1)], { maxLength: 4, stride: 2 }, [mask]);
    expect(w.map((x) => bits(x.mask))).toEqual(['0000', '0001', '0011', '0011']);
  });

  it('refuses a stride outside 1..max length', () => {
    expect(() => slidingWindows([seqOf(5, 1)], { maxLength: 4, stride: 5 })).toThrow('window: stride must be an integer in 1..4 (the max length), got 5');
    expect(() => slidingWindows([seqOf(5, 1)], { maxLength: 1, stride: 1 })).toThrow('window: max length must be an integer >= 2, got 1');
  });
});

describe('perplexity over sliding windows', () => {
  const { model } = loadModel(path.join(FIXTURES, 'tiny-mixtral'));
  const seqs = [seqOf(40, 1), seqOf(23, 2), seqOf(7, 3)];

  /** Sum of -log p(token) over the scored tokens of each window, by a plain forward + log-softmax per window. */
  function plain(maxLength: number, stride: number): { nll: number; tokens: number } {
    let total = 0;
    let tokens = 0;
    for (const w of slidingWindows(seqs, { maxLength, stride })) {
      withScope(() => noGrad(() => {
        const lp = ops.logSoftmax(model.forward(new Tensor(Int32Array.from(w.ids), [1, w.ids.length]))).f;
        const V = model.config.vocabSize;
        for (let t = 1; t < w.ids.length; t++) if (w.mask[t] === 1) { total -= lp[(t - 1) * V + w.ids[t]!]!; tokens++; }
      }));
    }
    return { nll: total / tokens, tokens };
  }

  it('equals a plain loop over the windows (overlapping and disjoint), batched or not', () => {
    for (const [maxLength, stride, batch] of [[16, 5, 1], [16, 16, 3], [9, 1, 4]] as const) {
      const ref = plain(maxLength, stride);
      const got = perplexity(model, seqs, { window: { maxLength, stride }, batch });
      expect(got.tokens).toBe(ref.tokens);
      expect(got.sequences).toBe(3);
      expect(Math.abs(got.nll - ref.nll) / ref.nll).toBeLessThan(1e-6);
    }
    expect(plain(16, 5).tokens).toBe(39 + 22 + 6);
  });

  it('windows at least as long as every sequence change nothing', () => {
    const whole = perplexity(model, seqs);
    const win = perplexity(model, seqs, { window: { maxLength: 40, stride: 3 } });
    expect(win.tokens).toBe(whole.tokens);
    expect(win.nll).toBe(whole.nll);
  });
});

describe('eval --max-length / --stride', () => {
  const tiny = path.join(FIXTURES, 'tiny-llama');

  it('refuses a max length beyond max_position_embeddings and a stride beyond the max length, one line each', () => {
    const dir = makeTmpDir('ppl-window-bad');
    const data = path.join(dir, 'ids.jsonl');
    fs.writeFileSync(data, `${JSON.stringify({ input_ids: seqOf(20, 1) })}\n`);
    expect(expectOneErrorLine(runCli(['eval', '--model', tiny, '--data', data, '--max-length', '300']))).toBe("moe-tune: --max-length: 300 is more than the model's max_position_embeddings 256");
    expect(expectOneErrorLine(runCli(['eval', '--model', tiny, '--data', data, '--max-length', '8', '--stride', '9']))).toBe('moe-tune: --stride: stride must be an integer in 1..8 (the max length), got 9');
  });

  const py = python5('eval sliding windows vs transformers');
  if (!py.available) console.warn(py.skipLine);
  it.skipIf(!py.available)('NLL and token count equal transformers\' strided loop on a sequence longer than max_position_embeddings', async () => {
    const dir = makeTmpDir('ppl-window-hf');
    const sequences = [seqOf(300, 1), seqOf(90, 2)];
    const data = path.join(dir, 'ids.jsonl');
    fs.writeFileSync(data, sequences.map((ids) => JSON.stringify({ input_ids: ids })).join('\n') + '\n');
    const jobs = (['tiny-llama', 'tiny-mixtral'] as const).flatMap((name) => ([[64, 24], [128, 128]] as const).map(([maxLength, stride]) => ({ name, maxLength, stride })));
    const jobFile = path.join(dir, 'jobs.json');
    fs.writeFileSync(jobFile, JSON.stringify(jobs.map((j) => ({ dir: path.join(FIXTURES, j.name), sequences, max_length: j.maxLength, stride: j.stride }))));
    const hf = await runPythonJson<{ nll: number; tokens: number }[]>(py, [path.join('test', 'python', 'strided_ppl.py'), jobFile], { timeoutMs: 120_000 });
    jobs.forEach((j, i) => {
      const ours = runCliJson<{ nll: number; tokens: number; sequences: number }>(['eval', '--model', path.join(FIXTURES, j.name), '--data', data, '--max-length', String(j.maxLength), '--stride', String(j.stride), '--json']);
      const what = `${j.name} ${j.maxLength}/${j.stride}`;
      expect(ours.tokens, what).toBe(hf[i]!.tokens);
      expect(ours.sequences).toBe(2);
      expect(Math.abs(ours.nll - hf[i]!.nll) / hf[i]!.nll, what).toBeLessThan(1e-5);
    });
  }, 240_000);
});
