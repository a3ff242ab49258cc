/**
 * Every paper router and every router surgery on every MoE family (Qwen2-MoE with its shared expert and
 * a dense layer, Qwen3-MoE, OLMoE), through the layout's module names: the router swap reads the same
 * rows, the routing records name the family's MoE module, the family's own rule is its default
 * (top-k renormalised or not: checked against a hand computation), surgery passes save and reload to
 * identical logits, and the trainable presets find the router rows and experts by the layouts' names.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, parseSurgerySpec } from '../src/adapters/index.js';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import { createModel } from '../src/models/create.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { createRouter, parseRouterSpec } from '../src/routers/registry.js';
import { noGrad, Tensor, withScope } from '../src/tensor/index.js';
import { selectTrainable } from '../src/train/trainable.js';
import { logits, maxDiff } from './helpers/compare.js';
import { pairsByToken } from './helpers/routing-view.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const small = { vocab_size: 64, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2 };
const FAMILIES: Record<string, Record<string, unknown>> = {
  Qwen2MoeForCausalLM: { ...small, num_experts: 6, num_experts_per_tok: 2, moe_intermediate_size: 12, shared_expert_intermediate_size: 16, mlp_only_layers: [1] },
  Qwen3MoeForCausalLM: { ...small, num_experts: 6, num_experts_per_tok: 2, moe_intermediate_size: 12, norm_topk_prob: true, head_dim: 8 },
  OlmoeForCausalLM: { ...small, num_experts: 6, num_experts_per_tok: 2, clip_qkv: 2 },
};
const ROUTERS = ['top-k:k=3', 'top-k:k=2,renormalize=false', 'top-p:p=0.5', 'threshold:t=0.6,capacity=2', 'expert-choice:capacity=2', 'random-drop:q=0.5,seed=3'];
const x = new Tensor(Int32Array.from([5, 9, 3, 60, 7, 1, 22, 41, 8, 13, 2, 33]), [2, 6]);

const model = (arch: string) => createModel({ ...FAMILIES[arch], architectures: [arch] }, { seed: 7, std: 0.3 });
const moeLayers = (arch: string): number[] => (arch === 'Qwen2MoeForCausalLM' ? [0, 2] : [0, 1, 2]);

describe.each(Object.keys(FAMILIES))('%s', (arch) => {
  it("the family's own rule: softmax top-k, renormalised only when norm_topk_prob (gates by hand)", () => {
    const m = model(arch);
    const ctx = ForwardContext.eval();
    withScope(() => noGrad(() => {
      m.forward(x, { ctx });
      expect(ctx.routing.map((r) => r.module)).toEqual(moeLayers(arch).map((l) => `model.layers.${l}.mlp`));
      const renorm = arch === 'Qwen3MoeForCausalLM';
      for (const rec of ctx.routing) {
        const { probs } = rec.routing;
        pairsByToken(rec.routing).forEach((pairs, t) => {
          const p = Array.from(probs.f.subarray(t * 6, (t + 1) * 6));
          const top = p.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 2);
          const sum = top[0]![0] + top[1]![0];
          expect(Object.keys(pairs).map(Number).sort()).toEqual(top.map(([, e]) => e).sort());
          for (const [v, e] of top) expect(pairs[e]!).toBeCloseTo(renorm ? v / sum : v, 6);
        });
      }
    }));
  });

  it.each(ROUTERS)('--router %s: same rows, finite loss, one record per MoE layer', (spec) => {
    const m = model(arch);
    m.setRouter(createRouter(parseRouterSpec(spec)));
    const ctx = new ForwardContext(true);
    const loss = withScope(() => noGrad(() => m.loss(x, nextTokenTargets(x), ctx).item()));
    expect(Number.isFinite(loss)).toBe(true);
    expect(ctx.routing.map((r) => r.layer)).toEqual(moeLayers(arch));
  });

  it.each(['null-experts:m=2,top_k=3', 'null-experts:m=6,top_k=4,mapping=identity', 'ternary:zero=2'])('surgery %s: save -> reload gives identical logits', async (spec) => {
    const m = model(arch);
    applySurgery(m, [parseSurgerySpec(spec)]);
    const dir = path.join(makeTmpDir('routers-families'), 'm');
    await saveModel(m, dir);
    const back = loadModel(dir).model;
    expect(back.config.architecture).toBe(arch);
    expect(maxDiff(logits(back, x), logits(m, x))).toBe(0);
  });

  it('null-experts (m = N, top_k = 2k) claims "preserved at step 0" only where the step-0 loss is unchanged', () => {
    const m = model(arch);
    const batch = { ids: x, targets: nextTokenTargets(x) };
    const step = applySurgery(m, [parseSurgerySpec('null-experts:m=6,top_k=4')], { batch }).report.passes[0]!;
    const claimsPreserved = step.notes.some((n) => n.includes('the function is preserved at step 0'));
    // Qwen3-MoE's own rule is renormalised softmax top-k, as the null-experts router: preserved exactly;
    // Qwen2-MoE and OLMoE do not renormalise, so the gates (and the loss) change at step 0, and the note says so
    expect(claimsPreserved).toBe(arch === 'Qwen3MoeForCausalLM');
    const moved = Math.abs(step.loss!.change);
    if (claimsPreserved) expect(moved).toBeLessThan(1e-6);
    else {
      expect(moved).toBeGreaterThan(1e-4);
      expect(step.notes.join('\n')).toMatch(/renormalize=false\) is not renormalised softmax top-k: the gates, so the function, change at step 0/);
    }
  });

  it("lora without targets takes the family's PEFT default (layout.loraTargets: q_proj, v_proj)", () => {
    const m = model(arch);
    applySurgery(m, [parseSurgerySpec('lora:r=2')]);
    const adapted = [...selectTrainable(m, { train: ['lora'] }).keys()].map((n) => n.replace(/\.lora_[AB]\.weight$/, ''));
    expect([...new Set(adapted)]).toEqual([0, 1, 2].flatMap((l) => [`model.layers.${l}.self_attn.q_proj`, `model.layers.${l}.self_attn.v_proj`]));
  });

  it("trainable presets by the layouts' names: routers = gate (+ gate2), experts = routed + shared", () => {
    const m = model(arch);
    applySurgery(m, [parseSurgerySpec('null-experts:m=2,top_k=3')]);
    const routers = [...selectTrainable(m, { train: ['routers'] }).keys()];
    expect(routers).toEqual(moeLayers(arch).flatMap((l) => [`model.layers.${l}.mlp.gate.weight`, `model.layers.${l}.mlp.gate2.weight`]));
    const experts = [...selectTrainable(m, { train: ['experts'] }).keys()];
    const perLayer = 6 * 3 + (arch === 'Qwen2MoeForCausalLM' ? 3 + 1 : 0);
    expect(experts.length).toBe(moeLayers(arch).length * perLayer);
    expect(experts.every((n) => /\.mlp\.(experts\.\d+\.|shared_expert)/.test(n))).toBe(true);
  });
});
