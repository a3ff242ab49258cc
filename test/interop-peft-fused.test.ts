/**
 * PEFT adapters trained on transformers 5, where Mixtral's experts are fused parameters adapted through
 * target_parameters (lora.ParamWrapper: stacked per-expert factors, rank_pattern 2r on gate_up_proj), import
 * into moe-tune's per-expert LoRA and compute what PEFT computes (NLL within 1e-5 relative).
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importPeftAdapter } from '../src/convert/index.js';
import { createModel } from '../src/models/create.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { evalIds, measure } from './helpers/interop-variants.js';
import { python5, repoRoot, runPythonJson } from './helpers/python.js';
import { tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const py = python5('interop fused-expert PEFT import (transformers 5)');
if (!py.available) console.log(py.skipLine);

describe.skipIf(!py.available)('importing transformers-5 PEFT adapters with target_parameters', () => {
  it('target_modules w1/w3/w2 (converted by PEFT) and explicit target_parameters: same NLL as PEFT', async () => {
    const root = makeTmpDir('interop-fused');
    const base = path.join(root, 'base');
    await saveModel(createModel(tinyMixtralConfig(), { seed: 4, std: 0.08 }), base);
    const ids = evalIds();
    const made = await runPythonJson<Record<string, { dir: string; nll: number; target_parameters: string[] }>>(py,
      [path.join(repoRoot, 'test', 'python', 'make_fused_peft.py'), base, root, JSON.stringify(ids)], { timeoutMs: 300_000 });
    for (const [name, a] of Object.entries(made)) {
      expect(a.target_parameters, name).toEqual(['down_proj', 'gate_up_proj']);
      const { model } = loadModel(base);
      const before = measure(model, ids).nll;
      const res = importPeftAdapter(model, a.dir);
      expect(res.modules.filter((m) => /\.experts\.\d+\.w[123]$/.test(m)).length, name).toBe(2 * 4 * 3);
      const nll = measure(model, ids).nll;
      expect(Math.abs(nll - before), `${name}: the adapter changes the model`).toBeGreaterThan(1e-4);
      expect(Math.abs(nll - a.nll) / a.nll, `${name}: moe-tune ${nll} vs PEFT ${a.nll}`).toBeLessThan(1e-5);
    }
  }, 300_000);
});
