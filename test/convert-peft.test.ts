/**
 * PEFT adapter export / import and the merged export: an adapter trained a few steps on
 * tiny-llama is written with exactly PEFT's file names, config fields and tensor keys; importing
 * it into a fresh base reproduces the logits; the merged model reloads as a plain Llama / Mixtral
 * (no moe_tune keys) and matches. Bad adapters give one-line errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, parseSurgerySpec } from '../src/adapters/index.js';
import {
  exportPeftAdapter, importPeftAdapter, mergeLora, PEFT_FORMAT_VERSION, saveMergedModel,
} from '../src/convert/index.js';
import { SafetensorsFile, writeJsonAtomic, writeSafetensors } from '../src/io/index.js';
import { applyLora, applyMoLora, LoraLinear, trainableParameters } from '../src/lora/index.js';
import { nextTokenTargets, type CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { loadModel } from '../src/models/load.js';
import { AdamW } from '../src/train/adamw.js';
import { backward, Rng, withScope, zeroGrad } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { logits, maxDiff } from './helpers/compare.js';

const LLAMA = path.join(FIXTURES, 'tiny-llama');
const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');

/**
 * Merged vs unmerged float32 logits: 1e-5 of the logit scale (at least 1e-4). The fixtures' logits
 * reach 17-37, and the same unmerged model already differs by ~3e-6 of that scale between the js
 * and native backends (GEMM summation order), so this bounds rounding, not a math difference.
 */
function tol(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]!));
  return 1e-5 * Math.max(10, m);
}

/** A few AdamW steps on the LoRA parameters; returns the losses. */
function train(model: CausalLM, steps: number, lr = 1e-2): number[] {
  const params = trainableParameters(model);
  const opt = new AdamW(params, { lr, weightDecay: 0 });
  const x = fixtureBatch(16);
  const targets = nextTokenTargets(x);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push(withScope(() => {
      zeroGrad(params.values());
      const loss = model.loss(x, targets, new ForwardContext(true, new Rng(s)));
      backward(loss);
      opt.update();
      return loss.item();
    }));
  }
  return losses;
}

/** Every field PEFT 0.20.0's LoraConfig writes (to_dict minus runtime_config), sorted. */
const PEFT_FIELDS = [
  'alora_invocation_tokens', 'alpha_pattern', 'arrow_config', 'auto_mapping', 'base_model_name_or_path', 'bias', 'corda_config',
  'ensure_weight_tying', 'eva_config', 'exclude_modules', 'fan_in_fan_out', 'inference_mode', 'init_lora_weights',
  'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha', 'lora_bias', 'lora_dropout',
  'lora_ga_config', 'megatron_config', 'megatron_core', 'modules_to_save', 'monteclora_config', 'peft_type', 'peft_version',
  'qalora_group_size', 'r', 'rank_pattern', 'revision', 'target_modules', 'target_parameters', 'task_type',
  'trainable_token_indices', 'use_bdlora', 'use_dora', 'use_qalora', 'use_rslora', 'velora_config',
];

describe('PEFT export of a LoRA adapter trained on tiny-llama', () => {
  it("writes PEFT's files, fields and keys; re-import reproduces the logits; the merged export is a plain Llama", async () => {
    const { model } = loadModel(LLAMA);
    applyLora(model, { r: 4, alpha: 8, dropout: 0.05, targets: ['v_proj', 'q_proj', 'down_proj'], seed: 1 });
    const losses = train(model, 6);
    expect(losses[5]!).toBeLessThan(losses[0]!);
    const x = fixtureBatch(16);
    const want = logits(model, x);

    const root = makeTmpDir('peft');
    const dir = path.join(root, 'adapter');
    const res = await exportPeftAdapter(model, dir, { baseModelNameOrPath: 'fixtures/tiny-llama' });
    expect(fs.readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(res.files).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    const text = fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8');
    const cfg = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(cfg)).toEqual(PEFT_FIELDS);
    expect(cfg).toEqual({
      alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null,
      base_model_name_or_path: 'fixtures/tiny-llama', bias: 'none', corda_config: null, ensure_weight_tying: false,
      eva_config: null, exclude_modules: null, fan_in_fan_out: false, inference_mode: true, init_lora_weights: true,
      layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: 8,
      lora_bias: false, lora_dropout: 0.05, lora_ga_config: null, megatron_config: null, megatron_core: 'megatron.core',
      modules_to_save: null, monteclora_config: null, peft_type: 'LORA', peft_version: PEFT_FORMAT_VERSION,
      qalora_group_size: 16, r: 4, rank_pattern: {}, revision: null, target_modules: ['down_proj', 'q_proj', 'v_proj'],
      target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null, use_bdlora: null, use_dora: false,
      use_qalora: false, use_rslora: false, velora_config: null,
    });
    expect(text.endsWith('}\n')).toBe(true);

    const st = SafetensorsFile.open(path.join(dir, 'adapter_model.safetensors'));
    try {
      expect(st.metadata).toEqual({ format: 'pt' });
      const keys = [0, 1].flatMap((l) => [
        [`model.layers.${l}.self_attn.q_proj`, 64], [`model.layers.${l}.self_attn.v_proj`, 32], [`model.layers.${l}.mlp.down_proj`, 64],
      ] as const);
      expect(st.names().sort()).toEqual(keys.flatMap(([p]) => [`base_model.model.${p}.lora_A.weight`, `base_model.model.${p}.lora_B.weight`]).sort());
      for (const [p, out] of keys) {
        const inF = p.endsWith('down_proj') ? 96 : 64;
        expect(st.info(`base_model.model.${p}.lora_A.weight`)).toMatchObject({ dtype: 'F32', shape: [4, inF] });
        expect(st.info(`base_model.model.${p}.lora_B.weight`)).toMatchObject({ dtype: 'F32', shape: [out, 4] });
        // trained: B moved away from zero, and the file holds the model's numbers
        const b = st.readFloat32(`base_model.model.${p}.lora_B.weight`);
        expect(b.some((v) => v !== 0)).toBe(true);
        expect(Array.from(b)).toEqual(Array.from((model.getModule(p) as LoraLinear).lora_B.weight.f));
      }
    } finally {
      st.close();
    }

    const fresh = loadModel(LLAMA).model;
    const imp = importPeftAdapter(fresh, dir);
    expect(imp.modules.length).toBe(6);
    expect(imp.baseModelNameOrPath).toBe('fixtures/tiny-llama');
    expect(fresh.config.extensions.lora).toEqual({ targets: ['down_proj', 'q_proj', 'v_proj'], r: 4, alpha: 8, dropout: 0.05, rslora: false });
    expect(maxDiff(logits(fresh, x), want)).toBe(0);

    const mergedDir = path.join(root, 'merged');
    await saveMergedModel(model, mergedDir);
    const mcfg = JSON.parse(fs.readFileSync(path.join(mergedDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(mcfg['architectures']).toEqual(['LlamaForCausalLM']);
    expect('moe_tune' in mcfg).toBe(false);
    const reloaded = loadModel(mergedDir);
    expect(reloaded.config.extensions).toEqual({});
    expect(reloaded.model.namedModules().some(([, m]) => m instanceof LoraLinear)).toBe(false);
    expect([...reloaded.model.parameters().keys()].sort()).toEqual([...loadModel(LLAMA).model.parameters().keys()].sort());
    const merged = logits(reloaded.model, x);
    expect(maxDiff(merged, want)).toBeLessThan(tol(want));
    console.log(`PEFT on tiny-llama: losses ${losses[0]!.toFixed(4)} -> ${losses[5]!.toFixed(4)}; merged vs LoRA max |logit diff| ${maxDiff(merged, want).toExponential(3)} (max |logit| ${Math.max(...want.map(Math.abs)).toFixed(2)})`);
  });

  it('Mixtral: LoRA on gate and experts exports PEFT keys, re-imports, and merges to a plain Mixtral', async () => {
    const { model } = loadModel(MIXTRAL);
    applyLora(model, { r: 2, alpha: 4, targets: ['gate', 'w1', 'w2', 'w3', 'o_proj'], seed: 2 });
    train(model, 3, 5e-3);
    const x = fixtureBatch(16);
    const want = logits(model, x);
    const root = makeTmpDir('peft-mixtral');
    const res = await exportPeftAdapter(model, path.join(root, 'adapter'));
    expect(res.config['target_modules']).toEqual(['gate', 'o_proj', 'w1', 'w2', 'w3']);
    expect(res.config['base_model_name_or_path']).toBe(null);
    expect(res.keys.length).toBe(2 * 2 * (1 + 1 + 4 * 3));
    expect(res.keys.slice(0, 4)).toEqual([
      'base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight',
      'base_model.model.model.layers.0.block_sparse_moe.gate.lora_A.weight', 'base_model.model.model.layers.0.block_sparse_moe.gate.lora_B.weight',
    ]);
    expect(res.keys).toContain('base_model.model.model.layers.1.block_sparse_moe.experts.3.w2.lora_B.weight');
    const fresh = loadModel(MIXTRAL).model;
    importPeftAdapter(fresh, path.join(root, 'adapter'));
    expect(maxDiff(logits(fresh, x), want)).toBe(0);
    await saveMergedModel(model, path.join(root, 'merged'));
    const reloaded = loadModel(path.join(root, 'merged'));
    expect(reloaded.config.architecture).toBe('MixtralForCausalLM');
    expect(reloaded.config.extensions).toEqual({});
    expect(maxDiff(logits(reloaded.model, x), want)).toBeLessThan(tol(want));
  });

  it('all-linear is written as the module names it resolved to; a regex stays a string; layers_to_transform and rsLoRA round-trip', async () => {
    const root = makeTmpDir('peft-patterns');
    const a = loadModel(LLAMA).model;
    applySurgery(a, [parseSurgerySpec('lora:r=2,targets=all-linear,layers=1,rslora=true')]);
    const ra = await exportPeftAdapter(a, path.join(root, 'a'));
    expect(ra.config['target_modules']).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(ra.config['layers_to_transform']).toEqual([1]);
    expect(ra.config['use_rslora']).toBe(true);
    expect(ra.keys.length).toBe(14);
    const b = loadModel(LLAMA).model;
    applyLora(b, { r: 2, alpha: 4, targets: '.*layers\\.0\\.self_attn\\.(q|k)_proj' });
    const rb = await exportPeftAdapter(b, path.join(root, 'b'));
    expect(rb.config['target_modules']).toBe('.*layers\\.0\\.self_attn\\.(q|k)_proj');
    const c = loadModel(LLAMA).model;
    expect(importPeftAdapter(c, path.join(root, 'a')).modules.every((p) => p.startsWith('model.layers.1.'))).toBe(true);
    expect((c.getModule('model.layers.1.mlp.up_proj') as LoraLinear).scaling).toBe(16 / Math.sqrt(2));
    const d = loadModel(LLAMA).model;
    expect(importPeftAdapter(d, path.join(root, 'b')).modules).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj']);
  });
});

describe('PEFT errors are one line', () => {
  async function adapterDir(): Promise<string> {
    const model = loadModel(LLAMA).model;
    applyLora(model, { r: 2, alpha: 4, targets: ['q_proj'] });
    const dir = path.join(makeTmpDir('peft-bad'), 'adapter');
    await exportPeftAdapter(model, dir);
    return dir;
  }

  function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
    const f = path.join(dir, 'adapter_config.json');
    const c = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
    edit(c);
    writeJsonAtomic(f, c);
  }

  it('unsupported peft_type and options name the file and field', async () => {
    const dir = await adapterDir();
    const f = path.join(dir, 'adapter_config.json');
    editConfig(dir, (c) => { c['peft_type'] = 'IA3'; });
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(`${f}: field 'peft_type': "IA3" is not supported (only "LORA")`);
    editConfig(dir, (c) => { c['peft_type'] = 'LORA'; c['use_dora'] = true; });
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(`${f}: field 'use_dora': true is not supported (moe-tune imports plain LoRA adapters)`);
    editConfig(dir, (c) => { c['use_dora'] = false; c['bias'] = 'all'; });
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(`${f}: field 'bias': "all" is not supported (only "none")`);
    editConfig(dir, (c) => { c['bias'] = 'none'; c['target_modules'] = ['w1']; });
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: targets 'w1' match no linear of LlamaForCausalLM`));
  });

  it('a tensor that matches no module, a shape mismatch, a missing tensor, a missing file', async () => {
    const dir = await adapterDir();
    const w = path.join(dir, 'adapter_model.safetensors');
    const st = SafetensorsFile.open(w);
    const tensors = st.names().map((name) => ({ name, dtype: 'F32' as const, shape: st.info(name).shape, data: st.readFloat32(name) }));
    st.close();
    writeSafetensors(w, [...tensors, { name: 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', dtype: 'F32', shape: [2, 64], data: new Float32Array(128) }]);
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(
      `${w}: tensor 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight' matches no module that target_modules selects in LlamaForCausalLM`);
    writeSafetensors(w, tensors.map((t) => (t.name.endsWith('layers.1.self_attn.q_proj.lora_A.weight') ? { ...t, shape: [4, 32], data: new Float32Array(128) } : t)));
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(
      `${w}: tensor 'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight' has shape [4, 32], expected [2, 64]`);
    writeSafetensors(w, tensors.filter((t) => !t.name.includes('layers.1.')));
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(
      `${w}: missing tensor 'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight' (target_modules selects its module)`);
    fs.rmSync(w);
    expect(() => importPeftAdapter(loadModel(LLAMA).model, dir)).toThrow(`${w}: file not found`);
    // nothing was applied by the failed imports
    const m = loadModel(LLAMA).model;
    expect(() => importPeftAdapter(m, dir)).toThrow();
    expect(m.config.extensions.lora).toBeUndefined();
  });

  it('export refuses surgered architectures, Mo-LoRA, merged adapters; mergeLora refuses Mo-LoRA', async () => {
    const root = makeTmpDir('peft-refuse');
    const nulls = loadModel(MIXTRAL).model;
    applySurgery(nulls, [parseSurgerySpec('null-experts:m=4,top_k=3'), parseSurgerySpec('lora:r=2,targets=gate2')]);
    await expect(exportPeftAdapter(nulls, path.join(root, 'a'))).rejects.toThrow(
      'exportPeftAdapter: a PEFT adapter needs an unchanged transformers architecture, but the model has moe_tune.null_experts; save the whole model with saveModel instead');
    const mo = loadModel(LLAMA).model;
    applyMoLora(mo, { targets: ['q_proj'] });
    await expect(exportPeftAdapter(mo, path.join(root, 'b'))).rejects.toThrow('exportPeftAdapter: LlamaForCausalLM has no LoRA adapters');
    expect(() => mergeLora(mo)).toThrow('mergeLora: the model has Mo-LoRA layers; their experts are routed per token and cannot be folded into the base weights');
    const merged = loadModel(LLAMA).model;
    applyLora(merged, { r: 2, alpha: 4, targets: ['q_proj'] });
    (merged.getModule('model.layers.0.self_attn.q_proj') as LoraLinear).merge();
    await expect(exportPeftAdapter(merged, path.join(root, 'c'))).rejects.toThrow(
      'exportPeftAdapter: model.layers.0.self_attn.q_proj is merged into its base weight; unmerge() before exporting the adapter');
    expect(fs.existsSync(path.join(root, 'c'))).toBe(false);
    const plain = loadModel(LLAMA).model;
    expect(() => mergeLora(plain)).toThrow('mergeLora: LlamaForCausalLM has no LoRA adapters');
  });
});
