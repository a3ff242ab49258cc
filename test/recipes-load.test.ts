/**
 * Recipes: every shipped recipe validates (full and tiny variants), names its paper and marks our
 * own values; errors are one line naming the file (or --set) and the key path; --set is typed by
 * the schema; extends and tiny merge as documented; the resolved recipe written with a run loads
 * back to the same recipe.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRecipes, loadRecipe, RECIPES_DIR, writeResolvedRecipe } from '../src/recipes/index.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const SHIPPED = listRecipes();

function recipeFile(dir: string, name: string, text: string): string {
  const f = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

const MINIMAL = `name: t
paper: test
kind: pretrain
model:
  config: {architectures: [MixtralForCausalLM], hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4, num_experts_per_tok: 2, max_position_embeddings: 64}
train: {lr: 1.0e-3, batch_size: 2, seq_len: 16, steps: 5}
`;

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const msg = (err as Error).message;
    expect(msg).not.toMatch(/\n/);
    return msg;
  }
  throw new Error('expected an error');
}

describe('shipped recipes', () => {
  it('cover every paper setting of SPEC §6', () => {
    expect(SHIPPED.map((r) => r.name).sort()).toEqual([
      'adamoe-llama2-m5k2', 'adamoe-llama2-m5k4', 'adamoe-llama2-m7k4', 'adamoe-llama2-m9k4', 'adamoe-llama2-top1', 'adamoe-llama2-top2',
      'adamoe-mixtral-qlora', 'expert-choice', 'tcmoe-a2-0', 'tcmoe-a2-1e-5', 'tcmoe-a2-2e-5', 'topp-dynamic', 'xmoe-dense-decompose', 'xmoe-threshold-pretrain',
    ]);
  });

  it.each(SHIPPED.map((r) => r.name))('%s: the full and tiny variants validate, the name matches the file, our values are marked', (name) => {
    const full = loadRecipe(name);
    expect(full.recipe.name).toBe(name);
    expect(full.variant).toBe('full');
    expect(full.recipe.paper.length).toBeGreaterThan(10);
    const tiny = loadRecipe(name, { tiny: true });
    expect(tiny.variant).toBe('tiny');
    expect(tiny.recipe.kind).toBe(full.recipe.kind);
    // the tiny variant never needs a download: no base model, Brown data
    expect(tiny.recipe.base_model).toBeNull();
    expect(tiny.recipe.data.source).toBe('brown');
    const text = full.chain.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    expect(text).toMatch(/# ours/);
  });

  it('the paper values are in the recipes', () => {
    const ada = loadRecipe('adamoe-mixtral-qlora').recipe;
    expect(ada.base_model).toBe('mistralai/Mixtral-8x7B-v0.1');
    expect(ada.quantization.method).toBe('nf4');
    expect(ada.surgery).toEqual(['null-experts:m=8,top_k=3']);
    expect(ada.lora).toMatchObject({ r: 8, targets: ['gate', 'gate2', 'w1', 'w2', 'w3'] });
    expect(ada.train).toMatchObject({ lr: 5e-5, epochs: 2 });
    expect(ada.data.samples).toBe(1000);
    const w = ada.aux_losses[0]!.weight as { type: string; values: number[] };
    expect(w.type).toBe('per-epoch');
    expect(w.values[0]!).toBeGreaterThan(w.values[1]!);
    for (const [name, m, k] of [['m5k4', 5, 4], ['m7k4', 7, 4], ['m9k4', 9, 4], ['m5k2', 5, 2], ['top1', 0, 1], ['top2', 0, 2]] as const) {
      const r = loadRecipe(`adamoe-llama2-${name}`).recipe;
      expect(r.base_model).toBe('meta-llama/Llama-2-7b-hf');
      expect(r.surgery).toEqual([`mo-lora:experts=4,r=8,alpha=16,top_k=${k},null=${m}`]);
      expect(r.train).toMatchObject({ lr: 3e-4, epochs: 2 });
      expect(r.seeds).toEqual([0, 1, 2]);
    }
    for (const [name, a2] of [['tcmoe-a2-0', 0], ['tcmoe-a2-1e-5', 1e-5], ['tcmoe-a2-2e-5', 2e-5]] as const) {
      const r = loadRecipe(name).recipe;
      expect(r.aux_losses.map((a) => [a.name, a.weight])).toEqual([['tcmoe-balance', 0.01], ['tcmoe-reward', a2]]);
      expect(r.model!.config).toMatchObject({ num_local_experts: 8, num_experts_per_tok: 2, num_key_value_heads: 2, moe_tune: { ternary: { zero_experts: 2 } } });
      expect(r.model!.init).toEqual({ std: 0.006, router_std: 0.006 });
    }
    const x = loadRecipe('xmoe-threshold-pretrain').recipe;
    expect(x.router).toBe('threshold:t=0.9,capacity=8');
    expect(x.train.lr).toBe(4.5e-4);
    expect((x.model!.config['moe_tune'] as { moe_layers: number[] }).moe_layers).toEqual([1, 3, 5, 7, 9, 11]);
    const tp = loadRecipe('topp-dynamic').recipe;
    expect(tp.router).toBe('top-p:p=0.4');
    expect(tp.aux_losses.map((a) => [a.name, a.weight])).toEqual([['topp-balance', 1e-2], ['entropy', 1e-4]]);
    expect(tp.model!.config['num_local_experts']).toBe(16);
    expect(loadRecipe('expert-choice').recipe.router).toBe('expert-choice:capacity=2');
    expect(loadRecipe('xmoe-dense-decompose').recipe.surgery).toEqual(['decompose-ffn:experts=8']);
  });
});

describe('recipe errors name the file and the key path', () => {
  const dir = makeTmpDir('recipes-errors');

  it('unknown keys, wrong types, missing keys, bad enums', () => {
    const bogus = recipeFile(dir, 'bogus', MINIMAL.replace('steps: 5}', 'steps: 5, bogus: 1}'));
    expect(errorOf(() => loadRecipe(bogus))).toMatch(/^.*bogus\.yaml: train\.bogus: unknown key \(valid keys here: lr, batch_size, .*\)$/);
    const wrong = recipeFile(dir, 'wrong', MINIMAL.replace('lr: 1.0e-3', 'lr: fast'));
    expect(errorOf(() => loadRecipe(wrong))).toMatch(/wrong\.yaml: train\.lr: expected number, got string 'fast'$/);
    const missing = recipeFile(dir, 'missing', MINIMAL.replace('paper: test\n', ''));
    expect(errorOf(() => loadRecipe(missing))).toMatch(/missing\.yaml: paper: missing \(expected string\)$/);
    const kind = recipeFile(dir, 'kind', MINIMAL.replace('kind: pretrain', 'kind: distill'));
    expect(errorOf(() => loadRecipe(kind))).toMatch(/kind\.yaml: kind: expected one of pretrain, finetune, got string 'distill'$/);
    const nested = recipeFile(dir, 'nested', `${MINIMAL}aux_losses:\n  - {name: balance, weight: {type: per-epoch, values: [0.1, x]}}\n`);
    expect(errorOf(() => loadRecipe(nested))).toMatch(/nested\.yaml: aux_losses\.0\.weight\.values\.1: expected number, got string 'x'$/);
    const yamlErr = recipeFile(dir, 'syntax', 'name: [unclosed\n');
    expect(errorOf(() => loadRecipe(yamlErr))).toMatch(/syntax\.yaml:\d+:\d+: invalid YAML/);
    expect(errorOf(() => loadRecipe('no-such-recipe'))).toMatch(/recipe 'no-such-recipe': no such file, and no recipe of that name in .* \(available: adamoe-llama2-m5k2, /);
  });

  it('registry problems: unknown router, aux loss, surgery pass, bad model config', () => {
    const router = recipeFile(dir, 'router', `${MINIMAL}router: "top-q:p=0.4"\n`);
    expect(errorOf(() => loadRecipe(router))).toMatch(/router\.yaml: router: unknown router 'top-q' \(valid: top-k:k,renormalize \| top-p:p/);
    const aux = recipeFile(dir, 'aux', `${MINIMAL}aux_losses: [{name: balanse}]\n`);
    expect(errorOf(() => loadRecipe(aux))).toMatch(/aux\.yaml: aux_losses\.0: unknown aux loss 'balanse'/);
    const pass = recipeFile(dir, 'pass', MINIMAL.replace('kind: pretrain', 'kind: finetune').replace('steps: 5', 'epochs: 1') + 'surgery: ["null-expert:m=8"]\n');
    expect(errorOf(() => loadRecipe(pass))).toMatch(/pass\.yaml: surgery\.0: unknown surgery pass 'null-expert'/);
    const cfg = recipeFile(dir, 'cfg', MINIMAL.replace('hidden_size: 32', 'hidden_size: 30'));
    expect(errorOf(() => loadRecipe(cfg))).toMatch(/cfg\.yaml: model\.config: config: unsupported config: hidden_size 30 is not divisible by num_attention_heads 4/);
    const both = recipeFile(dir, 'both', MINIMAL.replace('steps: 5', 'steps: 5, epochs: 2'));
    expect(errorOf(() => loadRecipe(both))).toMatch(/both\.yaml: train\.epochs: pretraining counts train\.steps, not epochs|set train\.steps or train\.epochs, not both/);
  });

  it('the tiny block: merged over the recipe, its errors say tiny.', () => {
    const f = recipeFile(dir, 'tiny', `${MINIMAL}tiny:\n  train: {steps: 2, seq_len: 8}\n`);
    const t = loadRecipe(f, { tiny: true }).recipe;
    expect(t.train).toMatchObject({ lr: 1e-3, batch_size: 2, seq_len: 8, steps: 2 });
    expect(loadRecipe(f).recipe.train.steps).toBe(5);
    const bad = recipeFile(dir, 'tinybad', `${MINIMAL}tiny:\n  train: {steps: two}\n`);
    expect(loadRecipe(bad).recipe.train.steps).toBe(5); // the full variant is fine
    expect(errorOf(() => loadRecipe(bad, { tiny: true }))).toMatch(/tinybad\.yaml: tiny\.train\.steps: expected number, got string 'two'$/);
    expect(errorOf(() => loadRecipe(recipeFile(dir, 'notiny', MINIMAL), { tiny: true }))).toMatch(/notiny\.yaml: no tiny: block/);
  });

  it('extends: the child wins, lists replace, errors name the file that set the key, cycles are refused', () => {
    recipeFile(dir, 'parent', `${MINIMAL}aux_losses: [{name: balance, weight: 0.01}]\ntiny:\n  train: {steps: 1}\n`);
    const child = recipeFile(dir, 'child', 'extends: parent.yaml\nname: child\ntrain: {lr: 2.0e-3}\naux_losses: [{name: z-loss, weight: 0.001}]\n');
    const r = loadRecipe(child);
    expect(r.recipe).toMatchObject({ name: 'child', train: { lr: 2e-3, batch_size: 2, steps: 5 } });
    expect(r.recipe.aux_losses.map((a) => a.name)).toEqual(['z-loss']);
    expect(r.chain.map((f) => path.basename(f))).toEqual(['parent.yaml', 'child.yaml']);
    expect(loadRecipe(child, { tiny: true }).recipe.train.steps).toBe(1);
    recipeFile(dir, 'parent2', MINIMAL.replace('seq_len: 16', 'seq_len: -1'));
    const child2 = recipeFile(dir, 'child2', 'extends: parent2.yaml\nname: child2\n');
    expect(errorOf(() => loadRecipe(child2))).toMatch(/parent2\.yaml: train\.seq_len: /);
    recipeFile(dir, 'cyc-a', 'extends: cyc-b.yaml\n');
    const b = recipeFile(dir, 'cyc-b', 'extends: cyc-a.yaml\n');
    expect(errorOf(() => loadRecipe(b))).toMatch(/extends cycle/);
  });
});

describe('--set overrides', () => {
  const dir = makeTmpDir('recipes-set');
  const f = recipeFile(dir, 'base', MINIMAL);

  it('are typed by the schema', () => {
    const r = loadRecipe(f, {
      sets: ['train.lr=3e-4', 'optimizer.clip_grad_norm=null', 'seeds=[1,2]', 'router=top-p:p=0.5', 'aux_losses=[{name: entropy, weight: 1.0e-4}]',
        'aux_losses.0.weight={type: linear, from: 0.1, to: 0}', 'quantization.double_quant=false', 'model.config.hidden_size=64', 'description=a b=c'],
    }).recipe;
    expect(r.train.lr).toBe(3e-4);
    expect(r.optimizer.clip_grad_norm).toBeNull();
    expect(r.seeds).toEqual([1, 2]);
    expect(r.router).toBe('top-p:p=0.5');
    expect(r.aux_losses).toEqual([{ name: 'entropy', weight: { type: 'linear', from: 0.1, to: 0 } }]);
    expect(r.quantization.double_quant).toBe(false);
    expect(r.model!.config['hidden_size']).toBe(64);
    expect(r.description).toBe('a b=c');
  });

  it('an unknown path, a wrong value, or a value the schema refuses is one line naming the --set', () => {
    expect(errorOf(() => loadRecipe(f, { sets: ['train.bogus=1'] }))).toBe("--set train.bogus: unknown key 'bogus' in train (valid keys: lr, batch_size, grad_accum, seq_len, steps, epochs, trainable, frozen, checkpoint_every, keep_checkpoints, gradient_checkpointing, time_budget_s)");
    expect(errorOf(() => loadRecipe(f, { sets: ['trian.lr=1'] }))).toMatch(/^--set trian\.lr: unknown key 'trian' in \(recipe\) \(valid keys: name, paper, /);
    expect(errorOf(() => loadRecipe(f, { sets: ['train.lr=abc'] }))).toBe("--set train.lr: expected a number, got 'abc'");
    expect(errorOf(() => loadRecipe(f, { sets: ['train.lr.x=1'] }))).toBe("--set train.lr.x: train.lr is a single value, it has no key 'x'");
    expect(errorOf(() => loadRecipe(f, { sets: ['train.batch_size=0'] }))).toMatch(/^--set train\.batch_size=0: Too small: expected number to be >0/);
    expect(errorOf(() => loadRecipe(f, { sets: ['router=nope'] }))).toMatch(/^--set router=nope: unknown router 'nope'/);
    expect(errorOf(() => loadRecipe(f, { sets: ['quantization.double_quant=yes'] }))).toBe("--set quantization.double_quant: expected true or false, got 'yes'");
    expect(errorOf(() => loadRecipe(f, { sets: ['noequals'] }))).toBe("--set 'noequals': expected key.path=value");
  });
});

describe('the resolved recipe saved with a run', () => {
  it('recipe.yaml loads back to the same recipe; recipe.json holds it as JSON', () => {
    const dir = makeTmpDir('recipes-write');
    const r = loadRecipe('adamoe-mixtral-qlora', { tiny: true, sets: ['train.steps=3', 'train.epochs=null'] });
    const files = writeResolvedRecipe(dir, r);
    const again = loadRecipe(files.yaml);
    expect(again.recipe).toEqual(r.recipe);
    expect(JSON.parse(fs.readFileSync(files.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(r.recipe)));
    expect(fs.readFileSync(files.yaml, 'utf8')).toContain(`# Resolved moe-tune recipe (tiny variant) from ${path.join(RECIPES_DIR, 'adamoe-mixtral-qlora.yaml')}`);
  });
});
