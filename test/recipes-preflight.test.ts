/**
 * Preflight (src/recipes/preflight.ts): a recipe that does not fit its base model fails before any
 * weight is read, with the same one-line error the full run gives after loading. Each case runs
 * runFinetuneRecipe with the real fixture checkpoint while counting weight reads (readFloat32Into,
 * storedLocation: every loader path goes through one of them): zero reads, and the message equals
 * the one adaptBase / adaptLora / selectTrainable / the aux loss give on the really loaded model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Checkpoint, SafetensorsFile } from '../src/io/index.js';
import { loadModel } from '../src/models/load.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { adaptBase, adaptLora, loadRecipe, preflightFinetune, runFinetuneRecipe } from '../src/recipes/index.js';
import { noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { selectTrainable } from '../src/train/trainable.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');
const LLAMA = path.join(FIXTURES, 'tiny-llama');

const dir = makeTmpDir('preflight');
const data = path.join(dir, 'data.jsonl');
fs.writeFileSync(data, `${Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `document ${i} about the weather and the sea` })).join('\n')}\n`);

function recipeFile(name: string, body: string): string {
  const f = path.join(dir, `${name}.yaml`);
  const train = body.includes('train:') ? '' : 'train: {lr: 1.0e-4, steps: 1, batch_size: 1, seq_len: 8}\n';
  fs.writeFileSync(f, `name: ${name}\npaper: test\nkind: finetune\n${train}${body}`);
  return f;
}

let reads = 0;
beforeEach(() => {
  reads = 0;
  for (const proto of [Checkpoint.prototype, SafetensorsFile.prototype]) {
    for (const m of ['readFloat32Into', 'storedLocation'] as const) {
      const orig = proto[m] as (...a: unknown[]) => unknown;
      vi.spyOn(proto, m).mockImplementation(function (this: unknown, ...a: unknown[]) {
        reads++;
        return orig.apply(this, a);
      } as never);
    }
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The error of the full run's own code on the really loaded model (what preflight must repeat). */
function errorOnLoadedModel(modelDir: string, recipe: string): string {
  const resolved = loadRecipe(recipe);
  const model = loadModel(modelDir).model;
  try {
    adaptBase(model, resolved, { seed: 0 });
    adaptLora(model, resolved, { seed: 0 });
    selectTrainable(model, { train: resolved.recipe.train.trainable, ...(resolved.recipe.train.frozen ? { frozen: resolved.recipe.train.frozen } : {}) });
    withScope(() => noGrad(() => {
      const ctx = new ForwardContext(true, new Rng(0), 0);
      model.forward(new Tensor(new Int32Array(4), [1, 4]), { ctx });
      for (const a of resolved.compiled.auxLosses()) a.loss.compute(ctx.routing);
    }));
  } catch (e) {
    return (e as Error).message;
  }
  return '(no error)';
}

const CASES: { what: string; model: string; body: string; expect: RegExp }[] = [
  { what: 'a surgery spec that does not fit the expert count', model: MIXTRAL, body: 'surgery: ["null-experts:m=4,top_k=9"]\n', expect: /null-experts:m=4,top_k=9.*top_k 9 is more than the 4 experts \+ 4 null experts/ },
  { what: 'an aux loss needing null experts on a model without them', model: MIXTRAL, body: 'aux_losses: [{name: adamoe-balance, weight: 0.01}]\n', expect: /adamoe-balance.*has no null experts/ },
  { what: 'LoRA targets that name no module', model: MIXTRAL, body: 'lora: {r: 4, alpha: 8, targets: [query_key_value]}\n', expect: /lora.*query_key_value/ },
  { what: 'a router on a dense model', model: LLAMA, body: 'router: "top-k:k=1"\n', expect: /router: LlamaForCausalLM has no MoE layers/ },
  { what: 'a trainable set that matches nothing', model: MIXTRAL, body: 'train: {lr: 1.0e-4, steps: 1, batch_size: 1, seq_len: 8, trainable: ["^nothing_here$"]}\n', expect: /trainable: \[\^nothing_here\$\] matches no parameter/ },
];

describe('preflight: a recipe that does not fit fails before any weight is read, with the full run\'s error', () => {
  for (const c of CASES) {
    it(c.what, async () => {
      const file = recipeFile(c.what.replace(/\W+/g, '-'), c.body);
      const want = errorOnLoadedModel(c.model, file);
      expect(want).toMatch(c.expect);
      reads = 0;
      const resolved = loadRecipe(file);
      await expect(runFinetuneRecipe(resolved, { runDir: path.join(dir, 'run'), modelDir: c.model, dataFiles: [data] })).rejects.toThrow(want);
      expect(reads).toBe(0);
    });
  }

  it('a fitting recipe passes preflight without reading a weight, and says what the load will read', () => {
    const file = recipeFile('fits', 'surgery: ["null-experts:m=4,top_k=3"]\nlora: {r: 4, alpha: 8, targets: [w1, w2, w3]}\naux_losses: [{name: adamoe-balance, weight: 0.01}]\nquantization: {method: nf4}\n');
    const rep = preflightFinetune(loadRecipe(file), { modelDir: MIXTRAL, dataFiles: [data] });
    expect(reads).toBe(0);
    expect(rep.modelDir).toBe(MIXTRAL);
    expect(rep.checkpointBytes).toBeGreaterThan(100_000);
  });

  it('a missing data file and a checkpoint missing a tensor fail in preflight too', async () => {
    const file = recipeFile('data', '');
    expect(() => preflightFinetune(loadRecipe(file), { modelDir: MIXTRAL, dataFiles: [path.join(dir, 'nope.jsonl')] })).toThrow(/nope.jsonl: data file not found/);
    // a copy of the fixture whose config asks for one layer more than the checkpoint holds
    const broken = path.join(dir, 'broken');
    fs.cpSync(MIXTRAL, broken, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(broken, 'config.json'), 'utf8')) as Record<string, unknown>;
    cfg['num_hidden_layers'] = 3;
    fs.writeFileSync(path.join(broken, 'config.json'), JSON.stringify(cfg));
    reads = 0;
    expect(() => preflightFinetune(loadRecipe(file), { modelDir: broken, dataFiles: [data] })).toThrow(/missing tensor 'model\.layers\.2\./);
    expect(reads).toBe(0);
  });
});
