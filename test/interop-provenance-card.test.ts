/**
 * Issue 15: the provenance of every output is the model actually used (`train --model DIR` records DIR in
 * recipe.yaml / recipe.json, adapter_config.json and the model card; `train --recipe RUN/recipe.yaml` re-runs
 * on the same model); a LoRA run whose router trained in full writes it into the adapter as modules_to_save;
 * a surgered LoRA run writes no adapter and says why; the model card's library_name, tags and usage snippet fit
 * the directory (PEFT adapter, remote code with trust_remote_code=True, moe-tune 4-bit, plain transformers).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { applySurgery, parseSurgerySpec } from '../src/adapters/index.js';
import { modelCardFor } from '../src/cli/hub-card.js';
import { exportPeftAdapter } from '../src/convert/index.js';
import { createModel } from '../src/models/create.js';
import { saveModel } from '../src/models/save.js';
import { quantizeModel, saveQuantizedModel } from '../src/quant/index.js';
import { Rng } from '../src/tensor/index.js';
import { runCli } from './helpers/cli.js';
import { tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

function recipeYaml(extra: string): string {
  return `name: interop-provenance
paper: "issue 15 test recipe"
kind: finetune
base_model: mistralai/Mixtral-8x7B-v0.1
lora: {r: 4, alpha: 8, dropout: 0.0, targets: [q_proj, v_proj]}
train: {lr: 1.0e-2, batch_size: 2, seq_len: 16, steps: 2, trainable: [lora, routers]}
eval: {every: 0, holdout_every: 0}
data: {source: files}
${extra}`;
}

function idsData(file: string): void {
  const rng = new Rng(3);
  const lines = Array.from({ length: 12 }, () => JSON.stringify({ input_ids: Array.from({ length: 20 }, () => 3 + rng.int(90)) }));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

const readJson = (f: string): Record<string, unknown> => JSON.parse(fs.readFileSync(f, 'utf8'));

describe('train --model DIR: provenance and the exact adapter', () => {
  it('records DIR in recipe.yaml, recipe.json, adapter_config.json and the model card; the saved recipe re-runs on DIR; the trained router is in the adapter', async () => {
    const root = makeTmpDir('interop-prov');
    const base = path.join(root, 'my-mixtral');
    await saveModel(createModel(tinyMixtralConfig(), { seed: 2, std: 0.05 }), base);
    const recipe = path.join(root, 'recipe.yaml');
    fs.writeFileSync(recipe, recipeYaml(''));
    const data = path.join(root, 'ids.jsonl');
    idsData(data);
    const run = path.join(root, 'run');
    const r = runCli(['train', '--recipe', recipe, '--model', base, '--data', data, '--out', run]);
    expect(r.code, r.stderr).toBe(0);
    const saved = parse(fs.readFileSync(path.join(run, 'recipe.yaml'), 'utf8')) as Record<string, unknown>;
    expect(saved['base_model']).toBe(path.resolve(base));
    expect(readJson(path.join(run, 'recipe.json'))['base_model']).toBe(path.resolve(base));
    const adapterCfg = readJson(path.join(run, 'final', 'adapter', 'adapter_config.json'));
    expect(adapterCfg['base_model_name_or_path']).toBe(path.resolve(base));
    // the routers trained in full ('routers' preset) are modules_to_save, under transformers 4 and 5 paths
    expect(adapterCfg['modules_to_save']).toEqual(['model.layers.0.block_sparse_moe.gate', 'model.layers.0.mlp.gate', 'model.layers.1.block_sparse_moe.gate', 'model.layers.1.mlp.gate']);
    const card = modelCardFor(path.join(run, 'final', 'adapter'), 'me/tiny-adapter').input;
    expect(card.baseModel).toBeUndefined(); // a local path is no Hub id: not claimed as base_model
    expect((card.recipe as Record<string, unknown>)['base_model']).toBe(path.resolve(base));
    expect(card.libraryName).toBe('peft');

    // re-running the saved recipe uses the same model (not the recipe's Mixtral-8x7B Hub id)
    const run2 = path.join(root, 'run2');
    const r2 = runCli(['train', '--recipe', path.join(run, 'recipe.yaml'), '--data', data, '--out', run2]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readJson(path.join(run2, 'recipe.json'))['base_model']).toBe(path.resolve(base));
    expect(readJson(path.join(run2, 'final', 'adapter', 'adapter_config.json'))['base_model_name_or_path']).toBe(path.resolve(base));
  }, 240_000);

  it('a surgered LoRA run writes no final/adapter and says why, pointing at the remote-code model', async () => {
    const root = makeTmpDir('interop-prov-surgery');
    const base = path.join(root, 'base');
    await saveModel(createModel(tinyMixtralConfig(), { seed: 2, std: 0.05 }), base);
    const recipe = path.join(root, 'recipe.yaml');
    fs.writeFileSync(recipe, recipeYaml('surgery: ["null-experts:m=4,top_k=3"]\n'));
    const data = path.join(root, 'ids.jsonl');
    idsData(data);
    const run = path.join(root, 'run');
    const r = runCli(['train', '--recipe', recipe, '--model', base, '--data', data, '--out', run]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(run, 'final', 'adapter'))).toBe(false);
    expect(r.stdout + r.stderr).toMatch(/no final\/adapter: surgery changed the architecture \(moe_tune\.null_experts\).*final\/model \(transformers: AutoModelForCausalLM\.from_pretrained\(dir, trust_remote_code=True\)\)/);
    expect(readJson(path.join(run, 'final', 'model', 'config.json'))['model_type']).toBe('moe_tune');
  }, 240_000);
});

describe('model card fits the directory', () => {
  it('plain, remote code, PEFT adapter, 4-bit: library_name, tags, usage snippet', async () => {
    const root = makeTmpDir('interop-card');
    const plain = path.join(root, 'plain');
    await saveModel(createModel(tinyMixtralConfig(), { seed: 1 }), plain);
    const c1 = modelCardFor(plain, 'me/plain').input;
    expect([c1.libraryName, c1.tags]).toEqual(['transformers', ['mixture-of-experts']]);
    expect(c1.pythonUsage).toContain('AutoModelForCausalLM.from_pretrained("me/plain")');
    expect(c1.pythonUsage).not.toContain('trust_remote_code');

    const surgered = createModel(tinyMixtralConfig(), { seed: 1 });
    applySurgery(surgered, [parseSurgerySpec('null-experts:m=4,top_k=3')]);
    const remote = path.join(root, 'remote');
    await saveModel(surgered, remote);
    const c2 = modelCardFor(remote, 'me/remote').input;
    expect([c2.libraryName, c2.tags]).toEqual(['transformers', ['mixture-of-experts', 'custom_code']]);
    expect(c2.pythonUsage).toContain('AutoModelForCausalLM.from_pretrained("me/remote", trust_remote_code=True)');

    const lora = createModel(tinyMixtralConfig(), { seed: 1 });
    applySurgery(lora, [parseSurgerySpec('lora:r=2,alpha=4,targets=q_proj')]);
    const adapter = path.join(root, 'adapter');
    await exportPeftAdapter(lora, adapter, { baseModelNameOrPath: 'mistralai/Mixtral-8x7B-v0.1' });
    const c3 = modelCardFor(adapter, 'me/adapter').input;
    expect([c3.libraryName, c3.tags, c3.baseModel]).toEqual(['peft', ['peft', 'lora'], 'mistralai/Mixtral-8x7B-v0.1']);
    expect(c3.pythonUsage).toContain('PeftModel.from_pretrained(base, "me/adapter")');
    expect(c3.pythonUsage).toContain('AutoModelForCausalLM.from_pretrained("mistralai/Mixtral-8x7B-v0.1")');

    const q = createModel(tinyMixtralConfig(), { seed: 1 });
    quantizeModel(q, { blockSize: 32 });
    const qdir = path.join(root, 'q');
    await saveQuantizedModel(q, qdir);
    const c4 = modelCardFor(qdir, 'me/q').input;
    expect([c4.libraryName, c4.tags, c4.pythonUsage]).toEqual(['moe-tune', ['mixture-of-experts', '4-bit', 'nf4'], undefined]);
    expect(c4.usageNote).toMatch(/moe-tune convert merge/);
  });
});
