/**
 * Every shipped recipe's tiny variant runs end to end through the CLI (`moe-tune pretrain|train
 * --recipe NAME --tiny`), shortened with --steps: it ends with the line saying where the model and
 * metrics are, logs one metrics row per step, writes the resolved recipe (YAML + JSON) into the
 * run directory and into every checkpoint's trainer state, and leaves a loadable model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listRecipes, loadRecipe } from '../src/recipes/index.js';
import { loadModel } from '../src/models/load.js';
import { isQuantizedModelDir, loadModelQuantized } from '../src/quant/index.js';
import { nativeAvailable } from '../src/tensor/index.js';
import { runCli } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const BACKEND = nativeAvailable() ? 'native' : 'js';
const STEPS = 4;

describe.each(listRecipes().map((r) => r.name))('recipe %s (tiny)', (name) => {
  it('runs end to end through the CLI', () => {
    const kind = loadRecipe(name).recipe.kind;
    const runDir = path.join(makeTmpDir(`tiny-${name}`), 'run');
    const args = [kind === 'pretrain' ? 'pretrain' : 'train', '--recipe', name, '--tiny', '--out', runDir, '--steps', String(STEPS),
      '--set', 'eval.max_batches=1', ...(kind === 'finetune' ? ['--set', 'data.samples=60'] : [])];
    const r = runCli(args, { env: { MOE_TUNE_BACKEND: BACKEND } });
    expect(r.code, r.stderr).toBe(0);
    const modelDir = kind === 'pretrain' ? path.join(runDir, 'model') : path.join(runDir, 'final', 'model');
    expect(r.stdout).toContain(`model: ${modelDir}`);
    expect(r.stdout).toContain(`metrics: ${path.join(runDir, 'metrics.jsonl')}`);
    const rows = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
    expect(rows.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    for (const m of rows) expect(Number.isFinite(m.loss)).toBe(true);
    // the resolved recipe, in the run and in the checkpoint
    const saved = loadRecipe(path.join(runDir, 'recipe.yaml')).recipe;
    expect(saved.name).toBe(name);
    expect(saved.train.steps).toBe(STEPS);
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'recipe.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(saved)));
    const ck = path.join(runDir, 'checkpoints', fs.readdirSync(path.join(runDir, 'checkpoints'))[0]!, 'trainer-state.json');
    type Extra = { recipe: unknown; recipe_source: { variant: string } };
    const state = JSON.parse(fs.readFileSync(ck, 'utf8')) as { extra: Extra & { pretrain?: unknown } };
    // pretrain() keeps its own record beside the caller's: {pretrain, recipe: <ours>}
    const extra = kind === 'pretrain' ? (state.extra.recipe as Extra) : state.extra;
    expect(extra.recipe).toEqual(JSON.parse(JSON.stringify(saved)));
    expect(extra.recipe_source.variant).toBe('tiny');
    // a loadable model
    const model = isQuantizedModelDir(modelDir) ? loadModelQuantized(modelDir).model : loadModel(modelDir).model;
    expect(model.config.architecture).toMatch(/ForCausalLM$/);
    expect(fs.existsSync(path.join(modelDir, 'tokenizer.json'))).toBe(true);
    if (saved.eval.sweep.length > 0) expect(fs.existsSync(path.join(runDir, 'sweep', 'sweep.json'))).toBe(true);
    if (kind === 'finetune') {
      const ev = JSON.parse(fs.readFileSync(path.join(runDir, 'eval.json'), 'utf8')) as { steps: number; after: { loss: number } };
      expect(ev.steps).toBe(STEPS);
      expect(Number.isFinite(ev.after.loss)).toBe(true);
    }
  });
});
