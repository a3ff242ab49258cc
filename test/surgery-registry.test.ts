/**
 * The surgery registry and applySurgery: spec parsing (defaults, aliases, lists), one-line errors,
 * the report (parameters added, trainable, step-0 loss), composition, and a user-defined pass (the
 * example of docs/surgery.md).
 */
import { describe, expect, it } from 'vitest';
import {
  applySurgery, createSurgeryPass, formatSurgeryReport, moeBlocksWithPaths, parseSurgerySpec, registerSurgeryPass,
  SURGERY_PASSES, type SurgeryPass,
} from '../src/adapters/index.js';
import { LoraLinear } from '../src/lora/index.js';
import { Linear } from '../src/models/linear.js';
import { Tensor } from '../src/tensor/index.js';
import { tinyLlamaConfig, tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';
import { logits } from './helpers/compare.js';

const X = new Tensor(Int32Array.from([3, 14, 15, 92, 65, 35, 89, 79, 32, 38]), [2, 5]);

describe('surgery specs', () => {
  it('parse names, aliases, defaults and | lists', () => {
    const p = parseSurgerySpec('null-experts:m=8,top_k=3');
    expect(p.name).toBe('null-experts');
    expect(p.spec).toBe('null-experts:m=8,top_k=3');
    expect(p.configKeys).toEqual(['moe_tune.null_experts']);
    expect(parseSurgerySpec('add-null-experts').name).toBe('null-experts');
    expect(parseSurgerySpec('add-ternary-rows').name).toBe('ternary');
    expect(parseSurgerySpec('add-lora-experts').name).toBe('mo-lora');
    expect(SURGERY_PASSES.map((e) => e.name)).toEqual(['null-experts', 'ternary', 'lora', 'mo-lora', 'decompose-ffn']);
    const model = tinyModel(tinyLlamaConfig());
    applySurgery(model, [parseSurgerySpec('lora:r=8,alpha=16,targets=q_proj|v_proj')]);
    expect(model.config.extensions.lora).toEqual({ targets: ['q_proj', 'v_proj'], r: 8, alpha: 16, dropout: 0, rslora: false });
    const m2 = tinyModel(tinyLlamaConfig());
    applySurgery(m2, [createSurgeryPass('lora', { targets: 're:.*\\.layers\\.1\\..*', r: 2 })]);
    expect(m2.config.extensions.lora!.targets).toBe('.*\\.layers\\.1\\..*');
    expect(m2.getModule('model.layers.1.mlp.up_proj')).toBeInstanceOf(LoraLinear);
    expect(m2.getModule('model.layers.0.mlp.up_proj')).toBeInstanceOf(Linear);
  });

  it('bad specs are one line listing what is valid', () => {
    expect(() => parseSurgerySpec('nul-experts:m=8')).toThrow('unknown surgery pass \'nul-experts\' (valid: null-experts, ternary, lora, mo-lora, decompose-ffn)');
    expect(() => parseSurgerySpec('null-experts:n=8')).toThrow("surgery pass 'null-experts': unknown key 'n' (valid keys: m, top_k, mapping)");
    expect(() => parseSurgerySpec('lora:r')).toThrow("surgery spec 'lora:r': expected key=value, got 'r'");
    expect(() => parseSurgerySpec('lora:r=4,r=8')).toThrow("surgery spec 'lora:r=4,r=8': key 'r' given twice");
    expect(() => parseSurgerySpec('decompose-ffn')).toThrow("surgery pass 'decompose-ffn': missing key 'experts'");
    expect(() => parseSurgerySpec('null-experts:m=abc')).toThrow("surgery pass 'null-experts': m must be an integer, got 'abc'");
    expect(() => parseSurgerySpec('lora:targets=q_proj||v_proj')).toThrow("surgery pass 'lora': targets: empty name in 'q_proj||v_proj' (expected names separated by |)");
    expect(() => parseSurgerySpec('null-experts:mapping=one')).toThrow("surgery pass 'null-experts': mapping must be zero or identity, got 'one'");
  });
});

describe('applySurgery report', () => {
  it('parameters added, trainable, step-0 loss (0 for LoRA with B = 0)', () => {
    const model = tinyModel(tinyMixtralConfig(), 3);
    const before = logits(model, X);
    const { report } = applySurgery(model, [parseSurgerySpec('lora:r=4,alpha=8,targets=q_proj|w2')], { batch: { ids: X } });
    const s = report.passes[0]!;
    // q_proj [32, 32]: 4 (32 + 32); w2 [32, 40] in 4 experts: 4 (40 + 32) each; 2 layers
    expect(s.added).toBe(2 * (4 * 64 + 4 * 4 * 72));
    expect(s.trainable).toBe(s.added);
    expect(s.paramsAfter - s.paramsBefore).toBe(s.added);
    expect(s.loss!.change).toBe(0);
    expect(Array.from(logits(model, X))).toEqual(Array.from(before));
    const text = formatSurgeryReport(report);
    expect(text[0]).toBe(`lora:r=4,alpha=8,targets=q_proj|w2: +${s.added} parameters (${s.paramsBefore} -> ${s.paramsAfter}), ${s.trainable} trainable; config moe_tune.lora`);
    expect(text.at(-1)).toBe('  step-0 loss on the batch: ' + s.loss!.before.toFixed(6) + ' -> ' + s.loss!.after.toFixed(6) + ' (change +0.000e+0)');
  });

  it('a pass that does not fit stops the run with its line', () => {
    const model = tinyModel(tinyLlamaConfig());
    expect(() => applySurgery(model, [parseSurgerySpec('lora:targets=gate')])).toThrow(
      "surgery pass 'lora:targets=gate': targets 'gate' match no linear of LlamaForCausalLM (its linears are named q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head)");
    expect(() => applySurgery(model, [parseSurgerySpec('lora:r=2'), parseSurgerySpec('lora:r=2,targets=k_proj')])).toThrow(
      "surgery pass 'lora:r=2,targets=k_proj': the model already has LoRA adapters (apply one lora pass with all targets)");
  });
});

/** docs/surgery.md's example: a user-defined pass that sharpens (or flattens) every MoE router. */
function routerTemperature(t: number): SurgeryPass {
  return {
    name: 'router-temperature',
    configKeys: [],
    check: (model) => (model.moeBlocks().length === 0 ? `${model.config.architecture} has no MoE layers` : t > 0 ? null : `t must be positive, got ${t}`),
    apply(model, ctx) {
      for (const [path, block] of moeBlocksWithPaths(model)) {
        const w = (block.gate as Linear).weight.f;
        for (let i = 0; i < w.length; i++) w[i] = w[i]! / t;
        ctx.note(`${path}.gate divided by ${t}`);
      }
    },
  };
}

describe('a user-defined pass', () => {
  it('runs through applySurgery with the built-in ones, and from a spec once registered', () => {
    const model = tinyModel(tinyMixtralConfig(), 4);
    const gate = Float32Array.from((model.getModule('model.layers.0.block_sparse_moe.gate') as Linear).weight.f);
    const { report } = applySurgery(model, [routerTemperature(2), parseSurgerySpec('lora:r=2,targets=w1')]);
    expect(report.passes[0]!.notes).toEqual(['model.layers.0.block_sparse_moe.gate divided by 2', 'model.layers.1.block_sparse_moe.gate divided by 2']);
    expect(report.passes[0]!.added).toBe(0);
    const after = (model.getModule('model.layers.0.block_sparse_moe.gate') as Linear).weight.f;
    for (let i = 0; i < gate.length; i++) expect(after[i]).toBe(gate[i]! / 2);
    expect(() => applySurgery(tinyModel(tinyLlamaConfig()), [routerTemperature(2)])).toThrow("surgery pass 'router-temperature': LlamaForCausalLM has no MoE layers");

    registerSurgeryPass({ name: 'router-temperature', summary: 'divide router rows by t', keys: { t: 1 }, create: (p) => routerTemperature(Number(p['t'])) });
    const m2 = tinyModel(tinyMixtralConfig(), 4);
    applySurgery(m2, [parseSurgerySpec('router-temperature:t=4')]);
    expect((m2.getModule('model.layers.1.block_sparse_moe.gate') as Linear).weight.f[3]).toBe(
      (tinyModel(tinyMixtralConfig(), 4).getModule('model.layers.1.block_sparse_moe.gate') as Linear).weight.f[3]! / 4);
    expect(() => applySurgery(m2, [parseSurgerySpec('router-temperature:t=0')])).toThrow("surgery pass 'router-temperature:t=0': t must be positive, got 0");
  });
});
