/**
 * The issue-14 walk-through on the new MoE families: a QLoRA `train` of the tiny AdaMoE recipe on a
 * Qwen3-MoE and an OLMoE checkpoint, once with `--set router=top-p:p=0.5` and once with null-experts
 * surgery (m = 3 < N = 8: allowed now), runs, saves final/model, and the saved model reloads with the
 * NLL the run measured on its held-out set (eval.json "after"), recomputed here on the same packed
 * sequences; `eval --router top-p:p=0.4` works on the base model; `info` shows experts and layers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TokenizedDocument } from '../src/data/documents.js';
import { packDocuments } from '../src/data/packing.js';
import { createModel } from '../src/models/create.js';
import '../src/lora/index.js'; // registers the LoRA layer extension (final/model carries moe_tune.lora)
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { isQuantizedModelDir, loadModelQuantized } from '../src/quant/index.js';
import { Rng } from '../src/tensor/index.js';
import { evaluateLoss } from '../src/train/evaluate.js';
import { runCli } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const base = { bos_token_id: 0, eos_token_id: 1, vocab_size: 320, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 };
const FAMILIES = {
  'qwen3-moe': { ...base, architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', num_experts: 8, num_experts_per_tok: 2, moe_intermediate_size: 16, norm_topk_prob: true, head_dim: 8 },
  olmoe: { ...base, architectures: ['OlmoeForCausalLM'], model_type: 'olmoe', num_experts: 8, num_experts_per_tok: 2, clip_qkv: 8 },
} as const;
const VARIANTS = {
  'top-p': ['--set', 'router=top-p:p=0.5', '--set', 'surgery=[]', '--set', 'aux_losses=[]', '--set', 'lora.targets=[q_proj, v_proj, gate_proj, up_proj, down_proj]'],
  'null-experts': ['--set', 'surgery=["null-experts:m=3,top_k=3"]', '--set', 'lora.targets=[gate, gate2, gate_proj, up_proj, down_proj]'],
} as const;

const dir = makeTmpDir('cli-train-families');
const ids = path.join(dir, 'ids.jsonl');
const docs: TokenizedDocument[] = [];

beforeAll(async () => {
  const rng = new Rng(5);
  const lines: string[] = [];
  for (let i = 0; i < 60; i++) {
    const d = Array.from({ length: 33 }, () => 3 + Math.floor(rng.next() * 317));
    docs.push({ ids: Int32Array.from(d), mask: new Uint8Array(d.length).fill(1) });
    lines.push(JSON.stringify({ input_ids: d }));
  }
  fs.writeFileSync(ids, `${lines.join('\n')}\n`);
  for (const [name, cfg] of Object.entries(FAMILIES)) await saveModel(createModel(cfg, { seed: 3, std: 0.05 }), path.join(dir, name));
});

describe.each(Object.keys(FAMILIES))('%s', (family) => {
  it.each(Object.keys(VARIANTS) as (keyof typeof VARIANTS)[])('QLoRA train with %s: saves, and final/model reloads with the run\'s held-out NLL', (variant) => {
    const out = path.join(dir, `${family}-${variant}`);
    const r = runCli(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--model', path.join(dir, family), '--data', ids, '--set', 'data.source=files',
      '--steps', '6', '--set', 'eval.max_batches=1', '--set', 'data.samples=40', ...VARIANTS[variant], '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const modelDir = path.join(out, 'final', 'model');
    expect(r.stdout).toContain(`model: ${modelDir}`);
    const ev = JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8')) as { before: { loss: number }; after: { loss: number } };
    const { model, config } = isQuantizedModelDir(modelDir) ? loadModelQuantized(modelDir) : loadModel(modelDir);
    expect(config.architecture).toBe(FAMILIES[family as keyof typeof FAMILIES].architectures[0]);
    if (variant === 'null-experts') expect(config.extensions.null_experts).toEqual({ m: 3, top_k: 3, mapping: 'zero' });
    else expect(config.extensions.router).toEqual({ name: 'top-p', p: 0.5 });
    // the held-out set as the run made it: samples 40, every 10th held out, packed to 32 tokens with EOS 1
    const held = docs.slice(0, 40).filter((_, i) => i % 10 === 9);
    const after = evaluateLoss(model, { packed: packDocuments(held, { seqLen: 32, eosId: 1 }), maxBatches: 1 });
    expect(Math.abs(after.loss - ev.after.loss) / ev.after.loss, `reloaded ${after.loss} vs run ${ev.after.loss}`).toBeLessThan(1e-6);
    expect(after.loss).not.toBe(ev.before.loss);
  });

  it('eval --router top-p:p=0.4 and info on the base checkpoint', () => {
    const e = runCli(['eval', '--model', path.join(dir, family), '--data', ids, '--router', 'top-p:p=0.4', '--json']);
    expect(e.code, e.stderr).toBe(0);
    const j = JSON.parse(e.stdout) as { router: string; loss?: number; nll?: number };
    expect(JSON.stringify(j)).toContain('top-p');
    const i = runCli(['info', '--model', path.join(dir, family), '--json']);
    expect(i.code, i.stderr).toBe(0);
    const info = JSON.parse(i.stdout) as { layers: number; experts: { count: number; top_k: number; moe_layers: number[]; shared_experts: number }; parameters: { total: number; active_per_token: number; expert: number } };
    expect(info.layers).toBe(2);
    expect(info.experts).toMatchObject({ count: 8, top_k: 2, moe_layers: [0, 1], shared_experts: 0 });
    expect(info.parameters.active_per_token).toBe(info.parameters.total - info.parameters.expert + (info.parameters.expert * 2) / 8);
  });
});
