/**
 * `moe-tune eval` through the CLI and the perplexity API: the reference fixtures' NLL within 1e-5
 * relative on each backend, text input through the model's tokenizer (BOS per its config), a
 * --router override (and the model's own router restored), and one clear error line for bad input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { perplexity } from '../src/eval/perplexity.js';
import { loadModel } from '../src/models/load.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { nativeAvailable, noGrad, ops, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { expectedNll, FIXTURES, fixtureIds } from './helpers/fixtures.js';
import { tinyLlamaConfig, tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const IDS = path.join(FIXTURES, 'ids.jsonl');
const HAS_NATIVE = nativeAvailable();
if (!HAS_NATIVE) console.warn('cli-eval: native addon not built; skipping the --backend native runs (js only)');

interface EvalJson {
  nll: number;
  ppl: number;
  tokens: number;
  load: number | null;
  router: string | null;
  backend: string;
  layers: { layer: number; load: number; tokens_per_expert: number[]; scored_tokens: number }[];
  flops_ratio: { moe_layers: number; model: number } | null;
}

/** Mean next-token NLL by a plain loop over model.forward and log-softmax (not the eval code). */
function plainNll(dir: string, seqs: number[][]): { nll: number; tokens: number } {
  const { model } = loadModel(dir);
  let total = 0;
  let tokens = 0;
  for (const seq of seqs) {
    withScope(() => noGrad(() => {
      const logits = model.forward(new Tensor(Int32Array.from(seq), [1, seq.length]));
      const lp = ops.logSoftmax(logits).f;
      const V = model.config.vocabSize;
      for (let t = 0; t + 1 < seq.length; t++) total -= lp[t * V + seq[t + 1]!]!;
      tokens += seq.length - 1;
    }));
  }
  return { nll: total / tokens, tokens };
}

describe('eval --json reproduces the reference NLL', () => {
  const expected = expectedNll();
  for (const backend of ['js', 'native']) {
    for (const name of ['tiny-llama', 'tiny-mixtral']) {
      it.skipIf(backend === 'native' && !HAS_NATIVE)(`${name} on --backend ${backend}`, () => {
        const out = runCliJson<EvalJson>(['--backend', backend, 'eval', '--model', path.join(FIXTURES, name), '--data', IDS, '--json']);
        expect(out.backend).toBe(backend);
        expect(out.tokens).toBe(expected[name]!.tokens);
        expect(Math.abs(out.nll - expected[name]!.nll) / expected[name]!.nll).toBeLessThan(1e-5);
        expect(out.ppl).toBeCloseTo(Math.exp(out.nll), 6);
        if (name === 'tiny-mixtral') {
          expect(out.router).toBe('top-k:k=2');
          expect(out.load).toBe(2);
          expect(out.layers.map((l) => l.layer)).toEqual([0, 1]);
          for (const l of out.layers) {
            expect(l.scored_tokens).toBe(119);
            expect(l.tokens_per_expert.reduce((a, b) => a + b, 0)).toBe(2 * 119);
          }
          expect(out.flops_ratio).toMatchObject({ moe_layers: 1, model: 1 });
        } else {
          expect(out.load).toBeNull();
          expect(out.router).toBeNull();
        }
      });
    }
  }
});

describe('perplexity API', () => {
  it('equals a plain log-softmax loop; batching equal lengths changes nothing for top-k', () => {
    const dir = path.join(FIXTURES, 'tiny-mixtral');
    const seqs = fixtureIds();
    const ref = plainNll(dir, seqs);
    const { model } = loadModel(dir);
    const r1 = perplexity(model, seqs);
    expect(r1.tokens).toBe(ref.tokens);
    expect(Math.abs(r1.nll - ref.nll) / ref.nll).toBeLessThan(1e-6);
    const equal = [seqs[1]!.slice(0, 20), seqs[2]!.slice(0, 20), seqs[2]!.slice(5, 25)];
    const a = perplexity(model, equal, { batch: 1 });
    const b = perplexity(model, equal, { batch: 3 });
    expect(b.nll).toBeCloseTo(a.nll, 5);
    expect(b.routerStats!.layers[0]!.tokensPerExpert).toEqual(a.routerStats!.layers[0]!.tokensPerExpert);
  });

  it('a router override routes every layer for the evaluation only', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-mixtral'));
    const before = model.moeBlocks().map((b) => b.router);
    const r = perplexity(model, fixtureIds(), { router: new TopKRouter(4) });
    expect(r.routerStats!.load).toBe(4);
    expect(model.moeBlocks().map((b) => b.router)).toEqual(before);
    const cli = runCliJson<EvalJson>(['eval', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--data', IDS, '--router', 'top-k:k=4', '--json']);
    expect(cli.router).toBe('top-k:k=4');
    expect(cli.load).toBe(4);
    expect(Math.abs(cli.nll - r.nll) / r.nll).toBeLessThan(1e-6);
    expect(cli.flops_ratio!.moe_layers).toBe(2);
  });
});

describe('eval on text lines uses the model directory tokenizer', () => {
  const root = makeTmpDir('cli-eval-text');
  const dir = path.join(root, 'model');
  const data = path.join(root, 'text.jsonl');
  const texts = ['The quick brown fox jumps over the lazy dog.', 'A mixture of experts routes each token.', 'One, two, three, four.'];

  beforeAll(async () => {
    await writeTinyCheckpoint(dir, tinyMixtralConfig({ vocab_size: 300, bos_token_id: 0, eos_token_id: 1 }));
    fs.writeFileSync(data, `${texts.map((t) => JSON.stringify({ text: t })).join('\n')}\n`);
  });

  it('equals scoring the ids the tokenizer gives, BOS first (add_bos_token true)', () => {
    const tok = writeTinyTokenizer(dir, true);
    const seqs = texts.map((t) => tok.encode(t));
    for (const s of seqs) expect(s[0]).toBe(tok.bosId);
    const ref = plainNll(dir, seqs);
    const out = runCliJson<EvalJson>(['eval', '--model', dir, '--data', data, '--json']);
    expect(out.tokens).toBe(ref.tokens);
    expect(out.tokens).toBe(seqs.reduce((n, s) => n + s.length - 1, 0));
    expect(Math.abs(out.nll - ref.nll) / ref.nll).toBeLessThan(1e-6);
  });

  it('without BOS when the tokenizer config says add_bos_token false', () => {
    const tok = writeTinyTokenizer(dir, false);
    const seqs = texts.map((t) => tok.encode(t));
    expect(seqs[0]![0]).not.toBe(tok.bosId);
    const out = runCliJson<EvalJson>(['eval', '--model', dir, '--data', data, '--json']);
    expect(out.tokens).toBe(seqs.reduce((n, s) => n + s.length - 1, 0));
    expect(Math.abs(out.nll - plainNll(dir, seqs).nll)).toBeLessThan(1e-5);
  });

  it('text without a tokenizer.json is one error line naming the file', () => {
    const line = expectOneErrorLine(runCli(['eval', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--data', data]));
    expect(line).toContain(path.join(FIXTURES, 'tiny-mixtral', 'tokenizer.json'));
  });
});

describe('eval: bad input is one clear error line and a non-zero exit', () => {
  const root = makeTmpDir('cli-eval-bad');
  const model = path.join(FIXTURES, 'tiny-mixtral');

  it('missing model directory', () => {
    expect(expectOneErrorLine(runCli(['eval', '--model', path.join(root, 'none'), '--data', IDS]))).toMatch(/none: model directory not found/);
  });

  it('missing data file', () => {
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', path.join(root, 'none.jsonl')]))).toMatch(/none\.jsonl: data file not found/);
  });

  it('corrupt data lines name FILE:LINE', () => {
    const bad = path.join(root, 'bad.jsonl');
    fs.writeFileSync(bad, '{"input_ids": [1, 2, 3]}\n\n{"input_ids": [1, 2,\n');
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', bad]))).toContain(`${bad}:3: invalid JSON`);
    fs.writeFileSync(bad, '{"input_ids": [1, 2, 3]}\n{"input_ids": [1, 999]}\n');
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', bad]))).toContain(`${bad}:2: "input_ids"[1] = 999 is not a token id (expected an integer in [0, 320))`);
    fs.writeFileSync(bad, '{"tokens": [1, 2]}\n');
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', bad]))).toContain(`${bad}:1: expected "input_ids", "text", "prompt"/"completion", "messages", Alpaca or ShareGPT fields (found keys: tokens)`);
  });

  it('unknown router, unknown key: the line lists what is valid', () => {
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', IDS, '--router', 'top-z']))).toMatch(/--router 'top-z': unknown router 'top-z' \(valid: top-k:k,renormalize \| top-p:p/);
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', IDS, '--router', 'top-k:z=1']))).toMatch(/unknown key 'z' \(valid keys: k, renormalize\)/);
  });

  it('a router on a dense model, a missing option, an unknown option', () => {
    expect(expectOneErrorLine(runCli(['eval', '--model', path.join(FIXTURES, 'tiny-llama'), '--data', IDS, '--router', 'top-k:k=1']))).toMatch(/dense model/);
    expect(expectOneErrorLine(runCli(['eval', '--model', model]))).toMatch(/required option '--data <file>' not specified/);
    expect(expectOneErrorLine(runCli(['eval', '--model', model, '--data', IDS, '--frob']))).toMatch(/unknown option '--frob'/);
  });

  it('a Llama checkpoint evaluates too (dense, no router statistics)', async () => {
    const dir = path.join(root, 'llama');
    await writeTinyCheckpoint(dir, tinyLlamaConfig());
    const data = path.join(root, 'ids.jsonl');
    fs.writeFileSync(data, '{"input_ids": [1, 5, 9, 12, 40]}\n');
    const out = runCliJson<EvalJson>(['eval', '--model', dir, '--data', data, '--json']);
    expect(out.tokens).toBe(4);
    expect(Math.abs(out.nll - plainNll(dir, [[1, 5, 9, 12, 40]]).nll)).toBeLessThan(1e-5);
  });
});
