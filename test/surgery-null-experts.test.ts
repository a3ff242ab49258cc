/**
 * add-null-experts (AdaMoE on Mixtral): gate2 = gate rows tiled, router mass on null experts
 * m/(N+m) for every token at step 0, ties won by the true expert, the function preserved when
 * ceil(top_k / (1 + m/N)) equals the original k, save -> load, composition with LoRA on
 * gate / gate2 / w1-w3 (the paper's recipe) and merge, null experts on Mo-LoRA, and errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applySurgery, nullExpertsPass, parseSurgerySpec, stepZeroTrueExpertRange, stepZeroTrueExperts, tileGateRows,
} from '../src/adapters/index.js';
import { AdaMoeBalanceLoss } from '../src/losses/adamoe-balance.js';
import { mergeLora } from '../src/convert/index.js';
import { applyLora, applyMoLora, LoraLinear, moLoraLayers, trainableParameters } from '../src/lora/index.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import type { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig, tinyModel } from './helpers/tiny-model.js';
import { logits, maxDiff } from './helpers/compare.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');

describe('null-experts on tiny-mixtral (N = 4, top-2)', () => {
  it('tiles gate rows into gate2 [m, D] (m = 8: two segments) and writes the config keys', () => {
    const { model } = loadModel(MIXTRAL);
    const gate0 = Float32Array.from((model.getModule('model.layers.1.block_sparse_moe.gate') as Linear).weight.f);
    applySurgery(model, [parseSurgerySpec('null-experts:m=8,top_k=3')]);
    const g2 = model.parameters().get('model.layers.1.block_sparse_moe.gate2.weight')!;
    expect(g2.shape).toEqual([8, 64]);
    for (let j = 0; j < 8; j++) {
      expect(Array.from(g2.f.subarray(j * 64, (j + 1) * 64))).toEqual(Array.from(gate0.subarray((j % 4) * 64, (j % 4 + 1) * 64)));
    }
    // gate itself is untouched
    expect(Array.from((model.getModule('model.layers.1.block_sparse_moe.gate') as Linear).weight.f)).toEqual(Array.from(gate0));
    expect(model.config.extensions.null_experts).toEqual({ m: 8, top_k: 3, mapping: 'zero' });
    expect(model.moeBlocks()[0]!.router.spec).toEqual({ name: 'null-experts', k: 3, m: 8, mapping: 'zero' });
    expect(model.config.moe!.topK).toBe(2);
  });

  for (const [m, topK] of [[2, 2], [3, 3], [6, 3]] as const) {
    it(`m=${m} (not a multiple of N = 4), top_k=${topK}: gate2 row j = gate row j mod N; each token reaches the prefix of its ranking the tie rule gives; AdaMoE balance by eq. 6`, () => {
      const { model } = loadModel(MIXTRAL);
      const gate0 = Float32Array.from((model.getModule('model.layers.0.block_sparse_moe.gate') as Linear).weight.f);
      const { report } = applySurgery(model, [nullExpertsPass({ m, topK })]);
      const g2 = model.parameters().get('model.layers.0.block_sparse_moe.gate2.weight')!;
      expect(g2.shape).toEqual([m, 64]);
      for (let j = 0; j < m; j++) expect(Array.from(g2.f.subarray(j * 64, (j + 1) * 64))).toEqual(Array.from(gate0.subarray((j % 4) * 64, (j % 4 + 1) * 64)));
      const N = 4;
      const R = N + m;
      const [lo, hi] = stepZeroTrueExpertRange(N, m, topK);
      expect(report.passes[0]!.notes.join('\n')).toContain(lo === hi ? `reaches ${lo} true expert(s)` : `reaches ${lo} to ${hi} true experts`);
      const copies = (e: number): number => Math.floor(m / N) + (e < m % N ? 1 : 0);
      const ctx = ForwardContext.eval();
      withScope(() => noGrad(() => {
        model.forward(fixtureBatch(16), { ctx });
        let seen = 0;
        for (const rec of ctx.routing) {
          const { probs, selected, numTokens: T } = rec.routing;
          for (let t = 0; t < T; t++) {
            // independent: walk the token's true ranking; each expert takes 1 + copies(e) of the top_k slots
            const order = Array.from({ length: N }, (_, e) => e).sort((a, b) => probs.f[t * R + b]! - probs.f[t * R + a]! || a - b);
            const want: number[] = [];
            let slots = 0;
            for (const e of order) {
              if (slots >= topK) break;
              want.push(e);
              slots += 1 + copies(e);
            }
            const got: number[] = [];
            for (let r = 0; r < N; r++) if (selected[t * R + r]) got.push(r);
            expect(got).toEqual([...want].sort((a, b) => a - b));
            expect(got.length).toBeGreaterThanOrEqual(lo);
            expect(got.length).toBeLessThanOrEqual(hi);
            let nullMass = 0;
            let copyMass = 0;
            for (let r = N; r < R; r++) nullMass += probs.f[t * R + r]!;
            for (let e = 0; e < N; e++) copyMass += copies(e) * probs.f[t * R + e]!;
            expect(Math.abs(nullMass - copyMass)).toBeLessThan(1e-6);
            seen++;
          }
        }
        expect(seen).toBe(64);
        // AdaMoE balance (eq. 6, mixtral-all form) by hand: (N + m) [sum_true f_i P_i + (1/m) (sum_null f)(sum_null P)]
        let T = 0;
        const f = new Float64Array(R);
        const P = new Float64Array(R);
        for (const rec of ctx.routing) {
          T += rec.routing.numTokens;
          for (let t = 0; t < rec.routing.numTokens; t++) {
            for (let r = 0; r < R; r++) {
              f[r]! += rec.routing.selected[t * R + r]!;
              P[r]! += rec.routing.probs.f[t * R + r]!;
            }
          }
        }
        let want = 0;
        for (let r = 0; r < N; r++) want += (f[r]! / T) * (P[r]! / T);
        let fn = 0;
        let pn = 0;
        for (let r = N; r < R; r++) {
          fn += f[r]! / T;
          pn += P[r]! / T;
        }
        want = (N + m) * (want + (fn * pn) / m);
        const got = new AdaMoeBalanceLoss().compute(ctx.routing)!.item();
        expect(Math.abs(got - want) / want).toBeLessThan(1e-6);
      }));
    });
  }

  for (const [m, topK] of [[4, 3], [8, 3], [12, 4]] as const) {
    it(`m=${m}, top_k=${topK}: null mass m/(N+m) on every token; ties go to the true expert`, () => {
      const { model } = loadModel(MIXTRAL);
      applySurgery(model, [nullExpertsPass({ m, topK })]);
      const ctx = ForwardContext.eval();
      const N = 4;
      // routing tensors live in the forward's scope: check inside it
      withScope(() => noGrad(() => {
        model.forward(fixtureBatch(16), { ctx });
        expect(ctx.routing.length).toBe(2);
        const R = N + m;
        const expectTrue = stepZeroTrueExperts(N, m, topK);
        for (const rec of ctx.routing) {
          const { probs, selected, numTokens: T } = rec.routing;
          expect(T).toBe(32);
          for (let t = 0; t < T; t++) {
            let nullMass = 0;
            for (let r = N; r < R; r++) nullMass += probs.f[t * R + r]!;
            expect(Math.abs(nullMass - m / (N + m))).toBeLessThan(1e-6);
            // every null copy ties its true row exactly
            for (let r = N; r < R; r++) expect(probs.f[t * R + r]).toBe(probs.f[t * R + ((r - N) % N)]);
            // a selected null copy implies its true row was selected first (the true expert wins the tie)
            let trueCount = 0;
            for (let r = 0; r < R; r++) {
              if (!selected[t * R + r]) continue;
              if (r < N) trueCount++;
              else expect(selected[t * R + ((r - N) % N)]).toBe(1);
            }
            expect(trueCount).toBe(expectTrue);
          }
          expect(rec.routing.stats.trueExpertsPerToken).toBe(expectTrue);
        }
      }));
    });
  }

  it('m = N, top_k = 3 reaches the same 2 true experts: the original top-2 function is kept (loss change reported)', () => {
    const { model } = loadModel(MIXTRAL);
    const x = fixtureBatch(16);
    const before = logits(model, x);
    const { report } = applySurgery(model, [nullExpertsPass({ m: 4, topK: 3 })], { batch: { ids: x } });
    const after = logits(model, x);
    console.log(`null-experts m=N, top_k=3 vs top-2: max |logit diff| ${maxDiff(after, before).toExponential(3)}`);
    expect(maxDiff(after, before)).toBeLessThan(1e-5);
    const step = report.passes[0]!;
    expect(Math.abs(step.loss!.change)).toBeLessThan(1e-6);
    expect(step.added).toBe(2 * 4 * 64);
    expect(step.notes.join('\n')).toContain('the function is preserved at step 0');
  });

  it('m = 2N, top_k = 3 reaches 1 true expert: the function changes and the report says so', () => {
    const { model } = loadModel(MIXTRAL);
    const x = fixtureBatch(16);
    const { report } = applySurgery(model, [nullExpertsPass({ m: 8, topK: 3 })], { batch: { ids: x } });
    const step = report.passes[0]!;
    expect(step.notes.join('\n')).toContain('each token reaches 1 true expert(s) (original top-2): the function changes at step 0');
    expect(Math.abs(step.loss!.change)).toBeGreaterThan(1e-4);
  });

  it('save -> load rebuilds gate2, the config and the router exactly', async () => {
    const { model } = loadModel(MIXTRAL);
    applySurgery(model, [nullExpertsPass({ m: 8, topK: 3 })]);
    const dir = path.join(makeTmpDir('null-experts'), 'model');
    await saveModel(model, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    // remote code: transformers must not load this as a plain Mixtral (gate2 would be dropped)
    expect([cfg.model_type, cfg.architectures, cfg.auto_map.AutoModelForCausalLM]).toEqual(['moe_tune', ['MoeTuneForCausalLM'], 'modeling_moe_tune.MoeTuneForCausalLM']);
    expect(cfg.moe_tune).toMatchObject({ null_experts: { m: 8, top_k: 3, mapping: 'zero' }, base_architecture: 'MixtralForCausalLM', base_model_type: 'mixtral' });
    expect(fs.existsSync(path.join(dir, 'modeling_moe_tune.py'))).toBe(true);
    const loaded = loadModel(dir).model;
    expect(loaded.parameters().get('model.layers.0.block_sparse_moe.gate2.weight')!.shape).toEqual([8, 64]);
    expect(loaded.moeBlocks()[1]!.router.spec).toEqual({ name: 'null-experts', k: 3, m: 8, mapping: 'zero' });
    const x = fixtureBatch(16);
    expect(maxDiff(logits(loaded, x), logits(model, x))).toBe(0);
  });

  it('identity mapping: null slots add p * x; save -> load keeps the mapping', async () => {
    const { model } = loadModel(MIXTRAL);
    const x = fixtureBatch(16);
    const before = logits(model, x);
    const { report } = applySurgery(model, [parseSurgerySpec('null-experts:m=4,top_k=3,mapping=identity')]);
    expect(report.passes[0]!.notes[1]).toContain('the function changes at step 0');
    const after = logits(model, x);
    expect(maxDiff(after, before)).toBeGreaterThan(1e-3);
    const dir = path.join(makeTmpDir('null-identity'), 'model');
    await saveModel(model, dir);
    const loaded = loadModel(dir).model;
    expect(loaded.config.extensions.null_experts).toEqual({ m: 4, top_k: 3, mapping: 'identity' });
    expect(maxDiff(logits(loaded, x), after)).toBe(0);
  });

  it("the paper's recipe: null experts + LoRA on gate, gate2, w1, w2, w3; save -> load; merge keeps the null experts", async () => {
    const { model } = loadModel(MIXTRAL);
    const { report } = applySurgery(model, [
      parseSurgerySpec('null-experts:m=8,top_k=3'),
      parseSurgerySpec('lora:r=4,alpha=8,targets=gate|gate2|w1|w2|w3'),
    ], { seed: 5 });
    expect(report.passes.map((p) => p.name)).toEqual(['null-experts', 'lora']);
    expect(model.getModule('model.layers.0.block_sparse_moe.gate2')).toBeInstanceOf(LoraLinear);
    // LoRA on gate2 [8, 64]: r (64 + 8); on gate [4, 64]: r (64 + 4); on each expert w1/w3 [96, 64], w2 [64, 96]
    expect(report.passes[1]!.added).toBe(2 * 4 * ((64 + 8) + (64 + 4) + 4 * 3 * (64 + 96)));
    expect(report.passes[1]!.trainable).toBe(report.passes[1]!.added);
    const rng = new Rng(3);
    for (const t of trainableParameters(model).values()) if (t.name?.endsWith('lora_B.weight')) for (let i = 0; i < t.size; i++) t.f[i] = rng.normal() * 0.01;
    const x = fixtureBatch(16);
    const want = logits(model, x);
    const dir = path.join(makeTmpDir('null-lora'), 'model');
    await saveModel(model, dir);
    const loaded = loadModel(dir).model;
    expect(maxDiff(logits(loaded, x), want)).toBe(0);
    expect([...trainableParameters(loaded).keys()]).toEqual([...trainableParameters(model).keys()]);
    const merged = mergeLora(model);
    expect(merged.config.extensions).toEqual({ null_experts: { m: 8, top_k: 3, mapping: 'zero' } });
    expect([...merged.parameters().keys()].some((k) => k.includes('lora_'))).toBe(false);
    // float32 rounding relative to the logit scale (see test/lora-linear.test.ts)
    expect(maxDiff(logits(merged, x), want)).toBeLessThan(1e-5 * Math.max(...want.map(Math.abs)));
  });
});

describe('null-experts on a dense model with Mo-LoRA (AdaMoE m5k4)', () => {
  it('adds m null rows to every Mo-LoRA router and raises top-k', async () => {
    const model = tinyModel(tinyLlamaConfig(), 3);
    const x = new Tensor(Int32Array.from([5, 9, 13, 70, 2, 44, 61, 8]), [2, 4]);
    const before = logits(model, x);
    const { report } = applySurgery(model, [parseSurgerySpec('mo-lora:targets=q_proj|v_proj,top_k=2'), parseSurgerySpec('null-experts:m=5,top_k=4')]);
    expect(model.config.extensions.mo_lora).toMatchObject({ experts: 4, null_experts: 5, top_k: 4 });
    const l = moLoraLayers(model)[0]!;
    expect(l.lora_router.weight.shape).toEqual([9, 32]);
    expect(l.router.spec).toEqual({ name: 'null-experts', k: 4, m: 5, mapping: 'zero' });
    expect(report.passes[1]!.added).toBe(4 * 5 * 32);
    expect(report.passes[1]!.notes[0]).toContain('4 routers gain 5 null-expert rows');
    const ctx = ForwardContext.eval();
    expect(maxDiff(logits(model, x, ctx), before)).toBeLessThanOrEqual(1e-5);
    for (const rec of ctx.routing) expect(rec.routing.layout.nullExperts).toBe(5);
    const dir = path.join(makeTmpDir('mo-lora-null-pass'), 'model');
    await saveModel(model, dir);
    expect(maxDiff(logits(loadModel(dir).model, x), logits(model, x))).toBe(0);
  });
});

describe('null-experts errors are one line', () => {
  const run = (model: CausalLM, spec: string): void => {
    applySurgery(model, [parseSurgerySpec(spec)]);
  };

  it('a dense model without Mo-LoRA', () => {
    expect(() => run(tinyModel(tinyLlamaConfig()), 'null-experts:m=8,top_k=3')).toThrow(
      "surgery pass 'null-experts:m=8,top_k=3': LlamaForCausalLM has no MoE layers; null experts need MoE blocks (Mixtral) or Mo-LoRA layers (apply mo-lora first)");
  });

  it('top_k too large, twice, after LoRA on the gate, identity on Mo-LoRA', () => {
    expect(() => run(loadModel(MIXTRAL).model, 'null-experts:m=4,top_k=9')).toThrow(
      "surgery pass 'null-experts:m=4,top_k=9': top_k 9 is more than the 4 experts + 4 null experts");
    const twice = loadModel(MIXTRAL).model;
    run(twice, 'null-experts:m=4,top_k=3');
    expect(() => run(twice, 'null-experts:m=4,top_k=3')).toThrow("surgery pass 'null-experts:m=4,top_k=3': the model already has 4 null experts per layer");
    const lora = loadModel(MIXTRAL).model;
    applyLora(lora, { r: 2, alpha: 4, targets: ['gate'] });
    expect(() => run(lora, 'null-experts:m=4,top_k=3')).toThrow(
      "surgery pass 'null-experts:m=4,top_k=3': model.layers.0.block_sparse_moe.gate is a LoraLinear, not a plain linear (apply null-experts before lora)");
    const mo = tinyModel(tinyLlamaConfig());
    applyMoLora(mo, { targets: ['q_proj'] });
    expect(() => run(mo, 'null-experts:m=4,top_k=3,mapping=identity')).toThrow(
      "surgery pass 'null-experts:m=4,top_k=3,mapping=identity': Mo-LoRA null experts are zero mappings (mapping 'identity' is for MoE blocks)");
  });

  it('tileGateRows: any m (rows j mod N, the last copy partial); m must be a positive integer', () => {
    const gate = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // N = 4 rows of D = 2
    expect(Array.from(tileGateRows(gate, 4, 2, 6))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4]);
    expect(Array.from(tileGateRows(gate, 4, 2, 3))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => tileGateRows(gate, 4, 2, 0)).toThrow('null-experts: m must be a positive integer, got 0');
    expect(stepZeroTrueExpertRange(4, 8, 3)).toEqual([1, 1]);
    expect(stepZeroTrueExpertRange(64, 8, 8)).toEqual([4, 8]);
    expect(stepZeroTrueExpertRange(4, 6, 3)).toEqual([1, 2]);
  });
});
