/**
 * LoRA layers: function preserved with B = 0, HF/PEFT names, PEFT's initialisation, scaling,
 * merge / unmerge, dropout only in training, float64 gradients, target selection like PEFT's
 * target_modules, and the one-line errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyLora, candidateLinears, LoraLinear, parseTargets, selectLinears, trainableParameters,
} from '../src/lora/index.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { noGrad, ops, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig, tinyModel } from './helpers/tiny-model.js';
import { logits, maxDiff } from './helpers/compare.js';

function randomizeB(model: CausalLM, seed: number, std = 0.05): void {
  const rng = new Rng(seed);
  for (const [, m] of model.namedModules()) {
    if (m instanceof LoraLinear) {
      const b = m.lora_B.weight.f;
      for (let i = 0; i < b.length; i++) b[i] = rng.normal() * std;
    }
  }
}

const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('LoRA on tiny-llama', () => {
  it('B = 0 leaves the logits unchanged (all attention and MLP projections)', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-llama'));
    const x = fixtureBatch(12);
    const before = logits(model, x);
    const res = applyLora(model, { r: 4, alpha: 8, targets: ALL });
    expect(res.modules.length).toBe(14);
    expect(maxDiff(logits(model, x), before)).toBeLessThanOrEqual(1e-5);
    // r * (in + out) per module: q (64+64), k (64+32), v (64+32), o (64+64), gate/up (64+96), down (96+64)
    expect(res.added).toBe(2 * 4 * (128 + 96 + 96 + 128 + 160 + 160 + 160));
  });

  it('keeps the base under its HF key, adds lora_A [r, in] / lora_B [out, r], and trains only those', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-llama'));
    applyLora(model, { r: 4, alpha: 8, targets: ['q_proj', 'k_proj'] });
    const p = model.parameters();
    expect(p.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([64, 64]);
    expect(p.get('model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 64]);
    expect(p.get('model.layers.0.self_attn.q_proj.lora_B.weight')!.shape).toEqual([64, 4]);
    expect(p.get('model.layers.1.self_attn.k_proj.lora_A.weight')!.shape).toEqual([4, 64]);
    expect(p.get('model.layers.1.self_attn.k_proj.lora_B.weight')!.shape).toEqual([32, 4]);
    expect([...trainableParameters(model).keys()]).toEqual([
      'model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.q_proj.lora_B.weight',
      'model.layers.0.self_attn.k_proj.lora_A.weight', 'model.layers.0.self_attn.k_proj.lora_B.weight',
      'model.layers.1.self_attn.q_proj.lora_A.weight', 'model.layers.1.self_attn.q_proj.lora_B.weight',
      'model.layers.1.self_attn.k_proj.lora_A.weight', 'model.layers.1.self_attn.k_proj.lora_B.weight',
    ]);
    expect(p.get('model.layers.0.self_attn.q_proj.weight')!.requiresGrad).toBe(false);
    expect(p.get('model.embed_tokens.weight')!.requiresGrad).toBe(false);
    expect(model.config.extensions.lora).toEqual({ targets: ['q_proj', 'k_proj'], r: 4, alpha: 8, dropout: 0, rslora: false });
  });
});

describe('LoRA save -> load', () => {
  it('saveModel writes moe_tune.lora and the A/B tensors; loadModel rebuilds the adapters, frozen as before', async () => {
    const model = tinyModel(tinyLlamaConfig(), 3);
    applyLora(model, { r: 3, alpha: 6, dropout: 0.1, targets: 'all-linear', exclude: ['o_proj'], layers: [0], seed: 2 });
    randomizeB(model, 4);
    const dir = path.join(makeTmpDir('lora-save'), 'model');
    await saveModel(model, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    // unmerged LoRA is moe-tune's architecture: remote code, the family kept in moe_tune.base_*
    expect(cfg.moe_tune).toEqual({
      lora: { targets: 'all-linear', exclude: ['o_proj'], layers: [0], r: 3, alpha: 6, dropout: 0.1, rslora: false },
      base_architecture: cfg.moe_tune.base_architecture, base_model_type: cfg.moe_tune.base_model_type,
      layout: cfg.moe_tune.layout,
    });
    // the layout the remote code reads: Llama's module names, plain attention, default rope
    expect(cfg.moe_tune.layout.mlp_names).toEqual(['gate_proj', 'up_proj', 'down_proj']);
    expect(cfg.moe_tune.layout.rope).toEqual({ type: 'default', theta: 10000 });
    expect([cfg.model_type, typeof cfg.moe_tune.base_architecture]).toEqual(['moe_tune', 'string']);
    const loaded = loadModel(dir).model;
    const x = new Tensor(Int32Array.from([9, 8, 7, 6, 5, 4]), [2, 3]);
    expect(maxDiff(logits(loaded, x), logits(model, x))).toBe(0);
    expect([...trainableParameters(loaded).keys()]).toEqual([...trainableParameters(model).keys()]);
    expect(trainableParameters(loaded).size).toBe(12);
    expect((loaded.getModule('model.layers.0.mlp.up_proj') as LoraLinear).dropout).toBe(0.1);
  });
});

describe('LoraLinear', () => {
  it("A is torch's kaiming_uniform_(a = sqrt 5): U(-1/sqrt(in), 1/sqrt(in)); B is zero", () => {
    const inF = 256;
    const base = new Linear(Tensor.param(new Float32Array(16 * inF), [16, inF]));
    const l = LoraLinear.create(base, { r: 64, alpha: 16 }, new Rng(3));
    const a = l.lora_A.weight.f;
    const bound = 1 / Math.sqrt(inF);
    let sum = 0;
    let sq = 0;
    let maxAbs = 0;
    for (const v of a) {
      sum += v;
      sq += v * v;
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    const n = a.length;
    expect(maxAbs).toBeLessThanOrEqual(bound);
    expect(maxAbs).toBeGreaterThan(0.99 * bound);
    expect(Math.abs(sum / n)).toBeLessThan(0.02 * bound);
    // variance of U(-b, b) is b^2 / 3; 16384 samples: relative standard error ~1.3%
    expect(sq / n / (bound * bound / 3)).toBeGreaterThan(0.95);
    expect(sq / n / (bound * bound / 3)).toBeLessThan(1.05);
    expect(l.lora_B.weight.f.every((v) => v === 0)).toBe(true);
  });

  for (const rslora of [false, true]) {
    it(`computes W x + scaling B A x with scaling = ${rslora ? 'alpha / sqrt(r)' : 'alpha / r'} (float64, by hand)`, () => {
      const rng = new Rng(11);
      const [inF, outF, r, alpha] = [5, 3, 4, 6];
      const w = rand64([outF, inF], rng, { grad: false });
      const base = new Linear(w);
      const a = rand64([r, inF], rng);
      const b = rand64([outF, r], rng);
      const l = new LoraLinear(base, a, b, { r, alpha, rslora });
      const s = rslora ? alpha / Math.sqrt(r) : alpha / r;
      expect(l.scaling).toBe(s);
      const x = rand64([2, inF], rng, { grad: false });
      const y = withScope(() => noGrad(() => Float64Array.from(l.forward(x).f)));
      for (let t = 0; t < 2; t++) {
        for (let o = 0; o < outF; o++) {
          let ref = 0;
          for (let i = 0; i < inF; i++) {
            let ba = 0;
            for (let k = 0; k < r; k++) ba += b.f[o * r + k]! * a.f[k * inF + i]!;
            ref += (w.f[o * inF + i]! + s * ba) * x.f[t * inF + i]!;
          }
          expect(Math.abs(y[t * outF + o]! - ref)).toBeLessThan(1e-12);
        }
      }
    });
  }

  it('gradients w.r.t. input, A and B match finite differences (float64)', () => {
    const rng = new Rng(5);
    const base = new Linear(rand64([6, 7], rng, { grad: false }));
    const a = rand64([3, 7], rng);
    const b = rand64([6, 3], rng);
    const l = new LoraLinear(base, a, b, { r: 3, alpha: 5 });
    const x = rand64([2, 4, 7], rng);
    const res = gradcheck(() => l.forward(x), [x, a, b]);
    expect(res.perInput.length).toBe(3);
    expect(res.maxRelError).toBeLessThan(1e-7);
  });

  it('dropout acts on the LoRA input only, in training only, from ctx.rng', () => {
    const rng = new Rng(8);
    const base = new Linear(rand64([6, 7], rng, { grad: false }));
    const a = rand64([3, 7], rng, { grad: false });
    const b = rand64([6, 3], rng, { grad: false });
    const l = new LoraLinear(base, a, b, { r: 3, alpha: 3, dropout: 0.5 });
    const plain = new LoraLinear(base, a, b, { r: 3, alpha: 3 });
    const x = rand64([4, 7], rng, { grad: false });
    const run = (m: LoraLinear, ctx?: ForwardContext): Float64Array => withScope(() => noGrad(() => Float64Array.from(m.forward(x, ctx).f)));
    expect(maxDiff(run(l, ForwardContext.eval()), run(plain))).toBe(0);
    const t1 = run(l, new ForwardContext(true, new Rng(1)));
    const t2 = run(l, new ForwardContext(true, new Rng(1)));
    expect(maxDiff(t1, t2)).toBe(0);
    expect(maxDiff(t1, run(plain))).toBeGreaterThan(1e-3);
    // the base output is untouched: with B = 0 training equals eval exactly
    const zeroB = new LoraLinear(base, a, new Tensor(new Float64Array(18), [6, 3]), { r: 3, alpha: 3, dropout: 0.5 });
    expect(maxDiff(run(zeroB, new ForwardContext(true, new Rng(2))), run(zeroB))).toBe(0);
    // dropout mask: inverted dropout on x, as torch
    const xd = withScope(() => noGrad(() => Float64Array.from(ops.dropout(x, 0.5, new Rng(1)).f)));
    const manual = withScope(() => noGrad(() => {
      const delta = ops.linear(ops.linear(new Tensor(xd, [4, 7]), a), b);
      return Float64Array.from(ops.add(base.forward(x), delta).f);
    }));
    expect(maxDiff(t1, manual)).toBeLessThan(1e-12);
  });

  it('merge() folds scaling B A into W: same logits as unmerged (tiny-mixtral, float32); unmerge() restores W', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-mixtral'));
    const x = fixtureBatch(12);
    const base = logits(model, x);
    const w0 = Float32Array.from((model.getModule('model.layers.0.block_sparse_moe.experts.1.w2') as Linear).weight.f);
    applyLora(model, { r: 4, alpha: 16, targets: ['q_proj', 'v_proj', 'gate', 'w1', 'w2', 'w3'] });
    randomizeB(model, 9, 0.02);
    const unmerged = logits(model, x);
    const scale = Math.max(...unmerged.map(Math.abs));
    // a random B really changes the function
    expect(maxDiff(unmerged, base)).toBeGreaterThan(1);
    const loras = model.namedModules().map(([, m]) => m).filter((m): m is LoraLinear => m instanceof LoraLinear);
    expect(loras.length).toBe(2 * (2 + 1 + 3 * 4));
    for (const l of loras) l.merge();
    expect(loras.every((l) => l.merged)).toBe(true);
    // |logits| reach ~17 here, so float32 rounding is judged relative to that scale: the js and
    // native backends already differ by ~3e-6 of it on the same unmerged model (GEMM summation
    // order) and merged vs unmerged measures 1.3e-6 (js) to 6e-6 (native). A wrong merge moves
    // the logits by the LoRA effect (> 1, checked above). Exactness is checked in float64 below.
    expect(maxDiff(logits(model, x), unmerged)).toBeLessThan(1e-5 * scale);
    for (const l of loras) l.unmerge();
    const lw = (model.getModule('model.layers.0.block_sparse_moe.experts.1.w2') as LoraLinear).base as Linear;
    expect(maxDiff(lw.weight.f, w0)).toBeLessThan(1e-6);
    expect(maxDiff(logits(model, x), unmerged)).toBeLessThan(1e-5 * scale);
  });

  it('merge() on a small-logit model: logits within 1e-5; float64: within 1e-12', () => {
    const model = tinyModel(tinyLlamaConfig(), 4);
    const x = new Tensor(Int32Array.from([3, 17, 40, 5, 90, 61, 2, 7]), [2, 4]);
    applyLora(model, { r: 4, alpha: 8, targets: 'all-linear' });
    randomizeB(model, 10, 0.05);
    const unmerged = logits(model, x);
    const loras = model.namedModules().map(([, m]) => m).filter((m): m is LoraLinear => m instanceof LoraLinear);
    for (const l of loras) l.merge();
    expect(maxDiff(logits(model, x), unmerged)).toBeLessThan(1e-5);
    const rng = new Rng(12);
    const base = new Linear(rand64([6, 7], rng, { grad: false }));
    const l = new LoraLinear(base, rand64([3, 7], rng), rand64([6, 3], rng), { r: 3, alpha: 5 });
    const xs = rand64([4, 7], rng, { grad: false });
    const run = (): Float64Array => withScope(() => noGrad(() => Float64Array.from(l.forward(xs).f)));
    const before = run();
    l.merge();
    expect(maxDiff(run(), before)).toBeLessThan(1e-12);
  });
});

describe('target selection (PEFT target_modules rules)', () => {
  const model = tinyModel(tinyLlamaConfig(), 2);
  const paths = (targets: ReturnType<typeof parseTargets>, extra: { exclude?: ReturnType<typeof parseTargets>; layers?: number[] } = {}): string[] =>
    selectLinears(model, { targets, ...extra }).map(([p]) => p);

  it('names match a path or its `.name` suffix; a regex matches the whole path', () => {
    expect(paths(parseTargets('q_proj|down_proj'))).toEqual([
      'model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.down_proj',
    ]);
    expect(paths(['model.layers.1.self_attn.q_proj'])).toEqual(['model.layers.1.self_attn.q_proj']);
    expect(paths(['proj'])).toEqual([]); // a suffix must be a whole name
    expect(paths(parseTargets('re:.*\\.layers\\.0\\.self_attn\\.[qk]_proj'))).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj']);
    expect(paths(parseTargets('re:q_proj'))).toEqual([]); // full match, as re.fullmatch
  });

  it('all-linear takes every linear but lm_head; exclude and layers narrow it', () => {
    const all = paths(parseTargets('all-linear'));
    expect(all.length).toBe(14);
    expect(candidateLinears(model).map(([p]) => p)).toContain('lm_head');
    expect(all).not.toContain('lm_head');
    expect(paths(parseTargets('all-linear'), { exclude: ['o_proj', 'up_proj'], layers: [1] })).toEqual([
      'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.k_proj', 'model.layers.1.self_attn.v_proj',
      'model.layers.1.mlp.gate_proj', 'model.layers.1.mlp.down_proj',
    ]);
  });
});

describe('LoRA errors are one clear line', () => {
  it('targets that match nothing list the linear names', () => {
    const model = tinyModel(tinyLlamaConfig(), 2);
    expect(() => applyLora(model, { r: 4, alpha: 8, targets: ['w1'] })).toThrow(
      "lora: targets 'w1' match no linear of LlamaForCausalLM (its linears are named q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head)");
  });

  it('a second LoRA, a bad rank, a bad regex, merging into a non-Linear base', () => {
    const model = tinyModel(tinyLlamaConfig(), 2);
    expect(() => applyLora(model, { r: 0, alpha: 8, targets: ['q_proj'] })).toThrow('lora: r must be a positive integer, got 0');
    expect(() => applyLora(model, { r: 2, alpha: 8, targets: ['q_proj'], dropout: 1 })).toThrow('lora: dropout must be in [0, 1), got 1');
    applyLora(model, { r: 2, alpha: 8, targets: ['q_proj'] });
    expect(() => applyLora(model, { r: 2, alpha: 8, targets: ['v_proj'] })).toThrow(
      'lora: the model already has LoRA adapters (r=2 on q_proj); apply one lora pass with all targets');
    expect(() => parseTargets('re:(q')).toThrow(/^targets: invalid regular expression '\(q': /);
    const inner = model.getModule('model.layers.0.self_attn.q_proj') as LoraLinear;
    const nested = new LoraLinear(inner, inner.lora_A.weight, inner.lora_B.weight, { r: 2, alpha: 8 });
    expect(() => nested.merge()).toThrow('LoRA merge: the base layer is a LoraLinear, not a plain Linear (dequantise it first)');
  });
});
