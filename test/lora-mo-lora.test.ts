/**
 * Mo-LoRA (AdaMoE on dense models): step-0 function preserved (B = 0), the routed sum checked
 * against a by-hand float64 computation, float64 gradients w.r.t. input / router / A / B, routing
 * records like MoE blocks, save -> load, training, null experts, errors.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyLora, applyMoLora, LoraExpert, MoLoraLinear, moLoraLayers, moLoraRouter, trainableParameters } from '../src/lora/index.js';
import { nextTokenTargets, type CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { ROUTERS } from '../src/routers/registry.js';
import { AdamW } from '../src/train/adamw.js';
import { backward, noGrad, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig, tinyModel } from './helpers/tiny-model.js';
import { logits, maxDiff } from './helpers/compare.js';

const hasRouter = (name: string): boolean => ROUTERS.some((r) => r.name === name);

function randomizeExperts(model: CausalLM, seed: number, std = 0.02): void {
  const rng = new Rng(seed);
  for (const l of moLoraLayers(model)) {
    for (const e of l.lora_experts.items) {
      const b = e.lora_B.weight.f;
      for (let i = 0; i < b.length; i++) b[i] = rng.normal() * std;
    }
  }
}

/** A float64 Mo-LoRA layer with random everything (B != 0). */
function layer64(seed: number, n: number, k: number, inF = 6, outF = 5, r = 3): { l: MoLoraLinear; w: Tensor; rw: Tensor; experts: LoraExpert[] } {
  const rng = new Rng(seed);
  const w = rand64([outF, inF], rng, { grad: false });
  const rw = rand64([n, inF], rng);
  const experts = Array.from({ length: n }, () => new LoraExpert(rand64([r, inF], rng), rand64([outF, r], rng)));
  const l = new MoLoraLinear(new Linear(w), rw, experts, moLoraRouter(k, 0), { r, alpha: 6, topK: k }, 'model.layers.3.mlp.up_proj');
  return { l, w, rw, experts };
}

describe('Mo-LoRA on tiny-llama', () => {
  it('B = 0: logits unchanged at step 0; one routing record per target linear', () => {
    const { model } = loadModel(path.join(FIXTURES, 'tiny-llama'));
    const x = fixtureBatch(12);
    const before = logits(model, x);
    const res = applyMoLora(model, { seed: 3 });
    expect(res.modules.length).toBe(14);
    const ctx = ForwardContext.eval();
    expect(maxDiff(logits(model, x, ctx), before)).toBeLessThanOrEqual(1e-5);
    expect(ctx.routing.map((r) => r.module)).toEqual(res.modules);
    expect(ctx.routing.map((r) => r.layer)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    for (const rec of ctx.routing) {
      expect(rec.routing.numTokens).toBe(24);
      expect(rec.routing.stats.trueExpertsPerToken).toBe(2);
      expect([...rec.routing.stats.tokensPerExpert].reduce((a, b) => a + b, 0)).toBe(48);
    }
    // parameters: router [4, in] + 4 experts (r (in + out)) per linear, r = 8
    const perLinear = (i: number, o: number): number => 4 * i + 4 * 8 * (i + o);
    expect(res.added).toBe(2 * (perLinear(64, 64) * 2 + perLinear(64, 32) * 2 + perLinear(64, 96) * 2 + perLinear(96, 64)));
    expect(trainableParameters(model).size).toBe(14 * (1 + 4 * 2));
    expect(model.config.extensions.mo_lora).toEqual({
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      experts: 4, r: 8, alpha: 16, top_k: 2, null_experts: 0, dropout: 0,
    });
  });

  it('save -> load rebuilds router and experts exactly (random B)', async () => {
    const model = tinyModel(tinyLlamaConfig(), 5);
    applyMoLora(model, { seed: 4, targets: ['q_proj', 'down_proj'], experts: 3, topK: 1, r: 2, alpha: 4 });
    randomizeExperts(model, 6, 0.1);
    const x = new Tensor(Int32Array.from([4, 8, 15, 16, 23, 42, 1, 2]), [2, 4]);
    const dir = path.join(makeTmpDir('mo-lora-save'), 'model');
    await saveModel(model, dir);
    const loaded = loadModel(dir).model;
    expect(loaded.namedParameters().map(([n, t]) => `${n}:${t.shape.join('x')}`)).toEqual(model.namedParameters().map(([n, t]) => `${n}:${t.shape.join('x')}`));
    expect(maxDiff(logits(loaded, x), logits(model, x))).toBe(0);
    expect(loaded.config.extensions.mo_lora).toEqual(model.config.extensions.mo_lora);
    expect([...trainableParameters(loaded).keys()]).toEqual([...trainableParameters(model).keys()]);
  });

  it('Mo-LoRA and LoRA on different linears of one model save and load together', async () => {
    const model = tinyModel(tinyLlamaConfig(), 9);
    applyMoLora(model, { seed: 1, targets: ['up_proj'], experts: 2, topK: 1 });
    applyLora(model, { r: 2, alpha: 4, targets: ['v_proj'], seed: 2 });
    randomizeExperts(model, 3, 0.1);
    for (const t of trainableParameters(model).values()) if (t.name?.endsWith('v_proj.lora_B.weight')) t.f.fill(0.05);
    const x = new Tensor(Int32Array.from([11, 12, 13, 14, 15, 16]), [1, 6]);
    const dir = path.join(makeTmpDir('mo-lora-lora'), 'model');
    await saveModel(model, dir);
    const loaded = loadModel(dir).model;
    expect(Object.keys(loaded.config.extensions).sort()).toEqual(['lora', 'mo_lora']);
    expect(maxDiff(logits(loaded, x), logits(model, x))).toBe(0);
    expect(trainableParameters(loaded).size).toBe(2 * (1 + 2 * 2) + 2 * 2);
    expect(() => applyLora(loaded, { r: 2, alpha: 4, targets: ['q_proj'] })).toThrow(/already has LoRA adapters/);
  });

  it('trains: router and experts get gradients, the loss falls, routing stays recorded', () => {
    const model = tinyModel(tinyLlamaConfig(), 7, 0.05);
    applyMoLora(model, { seed: 1, targets: ['q_proj', 'v_proj', 'down_proj'] });
    const params = trainableParameters(model);
    const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
    const x = new Tensor(Int32Array.from(Array.from({ length: 32 }, (_, i) => (i * 7) % 96)), [2, 16]);
    const targets = nextTokenTargets(x);
    const losses: number[] = [];
    for (let s = 0; s < 8; s++) {
      losses.push(withScope(() => {
        zeroGrad(params.values());
        const ctx = new ForwardContext(true, new Rng(s));
        const loss = model.loss(x, targets, ctx);
        backward(loss);
        expect(ctx.routing.length).toBe(6);
        opt.update();
        return loss.item();
      }));
    }
    const l0 = moLoraLayers(model)[0]!;
    expect(l0.lora_router.weight.gradValid).toBe(true);
    expect(losses[7]!).toBeLessThan(losses[0]! - 0.05);
  });
});

describe('MoLoraLinear (float64)', () => {
  it('equals base(x) + scaling * sum over the top-k of renormalised p_e B_e A_e x, by hand', () => {
    const n = 4;
    const k = 2;
    const { l, w, rw, experts } = layer64(21, n, k);
    const rng = new Rng(22);
    const x = rand64([5, 6], rng, { grad: false });
    const ctx = ForwardContext.eval();
    const y = withScope(() => noGrad(() => Float64Array.from(l.forward(x, ctx).f)));
    expect(ctx.routing[0]!.module).toBe('model.layers.3.mlp.up_proj');
    expect(ctx.routing[0]!.layer).toBe(3);
    const [inF, outF, r] = [6, 5, 3];
    const s = 6 / r;
    const mv = (m: Float64Array, rows: number, cols: number, v: number[]): number[] =>
      Array.from({ length: rows }, (_, i) => v.reduce((acc, vj, j) => acc + m[i * cols + j]! * vj, 0));
    for (let t = 0; t < 5; t++) {
      const xt = Array.from(x.f.subarray(t * inF, (t + 1) * inF));
      const logit = mv(rw.f as Float64Array, n, inF, xt);
      const mx = Math.max(...logit);
      const ex = logit.map((v) => Math.exp(v - mx));
      const p = ex.map((v) => v / ex.reduce((a, b) => a + b, 0));
      const order = [0, 1, 2, 3].sort((a, b) => p[b]! - p[a]! || a - b).slice(0, k);
      const norm = order.reduce((a, e) => a + p[e]!, 0);
      const ref = mv(w.f as Float64Array, outF, inF, xt);
      for (const e of order) {
        const ax = mv(experts[e]!.lora_A.weight.f as Float64Array, r, inF, xt);
        const bax = mv(experts[e]!.lora_B.weight.f as Float64Array, outF, r, ax);
        for (let o = 0; o < outF; o++) ref[o]! += s * (p[e]! / norm) * bax[o]!;
      }
      for (let o = 0; o < outF; o++) expect(Math.abs(y[t * outF + o]! - ref[o]!)).toBeLessThan(1e-12);
    }
  });

  it('gradients w.r.t. input, router, A and B match finite differences', () => {
    const { l, rw, experts } = layer64(31, 4, 2);
    const x = rand64([2, 3, 6], new Rng(32));
    const inputs = [x, rw, ...experts.flatMap((e) => [e.lora_A.weight, e.lora_B.weight])];
    const res = gradcheck(() => l.forward(x), inputs);
    expect(res.perInput.length).toBe(10);
    expect(res.maxRelError).toBeLessThan(1e-6);
  });
});

describe.runIf(hasRouter('null-experts'))('Mo-LoRA with null experts (m5k4)', () => {
  it('gradients w.r.t. input, router (true and null rows), A and B match finite differences', () => {
    const rng = new Rng(41);
    const [n, m, k, inF, outF, r] = [4, 5, 4, 6, 5, 2];
    const rw = rand64([n + m, inF], rng);
    const experts = Array.from({ length: n }, () => new LoraExpert(rand64([r, inF], rng), rand64([outF, r], rng)));
    const l = new MoLoraLinear(new Linear(rand64([outF, inF], rng, { grad: false })), rw, experts, moLoraRouter(k, m), { r, alpha: 4, topK: k }, 'model.layers.0.self_attn.q_proj');
    const x = rand64([7, inF], rng);
    const ctx = ForwardContext.eval();
    const res = gradcheck(() => l.forward(x, ctx), [x, rw, ...experts.flatMap((e) => [e.lora_A.weight, e.lora_B.weight])]);
    expect(res.maxRelError).toBeLessThan(1e-6);
    expect(ctx.routing[0]!.routing.layout.rows).toBe(9);
  });

  it('null rows in the router, fewer true experts per token, function preserved, save -> load', async () => {
    const model = tinyModel(tinyLlamaConfig(), 8);
    const x = new Tensor(Int32Array.from([4, 8, 15, 16, 23, 42, 1, 2]), [2, 4]);
    const before = logits(model, x);
    applyMoLora(model, { seed: 2, nullExperts: 5, topK: 4 });
    const ctx = ForwardContext.eval();
    expect(maxDiff(logits(model, x, ctx), before)).toBeLessThanOrEqual(1e-5);
    expect(moLoraLayers(model)[0]!.lora_router.weight.shape).toEqual([9, 32]);
    const load = ctx.routing.reduce((a, r) => a + r.routing.stats.trueExpertsPerToken, 0) / ctx.routing.length;
    expect(load).toBeLessThan(4);
    expect(load).toBeGreaterThan(0);
    randomizeExperts(model, 3, 0.1);
    const dir = path.join(makeTmpDir('mo-lora-null'), 'model');
    await saveModel(model, dir);
    expect(maxDiff(logits(loadModel(dir).model, x), logits(model, x))).toBe(0);
  });
});

describe('Mo-LoRA errors', () => {
  it('top_k beyond the experts, targets matching nothing, a linear that already has an adapter', () => {
    const model = tinyModel(tinyLlamaConfig(), 2);
    expect(() => applyMoLora(model, { experts: 2, topK: 3 })).toThrow('mo-lora: top_k 3 is more than the 2 experts');
    expect(() => applyMoLora(model, { targets: ['w2'] })).toThrow(/^mo-lora: targets 'w2' match no linear of LlamaForCausalLM/);
    applyMoLora(model, { targets: ['q_proj'] });
    expect(() => applyMoLora(model, { targets: ['v_proj'] })).toThrow('mo-lora: the model already has Mo-LoRA layers (on q_proj)');
  });
});
