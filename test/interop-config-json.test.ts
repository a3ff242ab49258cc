/**
 * config.json as transformers writes it (issue 15 item 4): float fields stay floats (a whole number is written
 * `0.0`), Python's float repr, `dtype` of the tensors (no stale `torch_dtype`), no keys of another file
 * (auto_map of other code, quantization_config after dequantisation), the family's rope keys kept (Kimi-K2's
 * mscale_all_dim sets MLA's softmax scale: save -> load must not change the model), generation_config.json
 * carried from the input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeModelDir } from '../src/cli/model-output.js';
import { pythonConfigJsonDumps, pythonFloatRepr } from '../src/io/index.js';
import { createModel } from '../src/models/create.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { baseConfig, evalIds, measure } from './helpers/interop-variants.js';
import { tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

describe('config.json floats, dtype and stale keys', () => {
  it("writes Python's float repr; whole-number floats as X.0; integers stay integers", () => {
    expect([0, 1, 1e-5, 1e-6, 0.02, 1e6, 1e16, 2.5e-7, 0.1].map(pythonFloatRepr)).toEqual(['0.0', '1.0', '1e-05', '1e-06', '0.02', '1000000.0', '1e+16', '2.5e-07', '0.1']);
    const text = pythonConfigJsonDumps({ router_jitter_noise: 0, rope_theta: 1000000, num_local_experts: 8, rope_parameters: { factor: 8, rope_type: 'llama3' }, moe_tune: { lora: { alpha: 16, r: 8 } } });
    expect(text).toBe('{\n  "moe_tune": {\n    "lora": {\n      "alpha": 16.0,\n      "r": 8\n    }\n  },\n  "num_local_experts": 8,\n  "rope_parameters": {\n    "factor": 8.0,\n    "rope_type": "llama3"\n  },\n  "rope_theta": 1000000.0,\n  "router_jitter_noise": 0.0\n}\n');
  });

  it('a saved Mixtral: router_jitter_noise 0.0, dtype of the tensors, no torch_dtype / auto_map / quantization_config; generation_config.json carried', async () => {
    const dir = makeTmpDir('interop-cfg');
    const src = path.join(dir, 'src');
    const model = createModel(tinyMixtralConfig({ router_jitter_noise: 0, torch_dtype: 'bfloat16', auto_map: { AutoConfig: 'x.Y' }, quantization_config: { quant_method: 'bitsandbytes' } }), { seed: 1 });
    await saveModel(model, src);
    fs.writeFileSync(path.join(src, 'generation_config.json'), '{\n  "bos_token_id": 1,\n  "eos_token_id": 2\n}\n');
    const text = fs.readFileSync(path.join(src, 'config.json'), 'utf8');
    expect(text).toContain('"router_jitter_noise": 0.0');
    expect(text).toContain('"rms_norm_eps": 1e-05');
    const cfg = JSON.parse(text);
    expect([cfg.dtype, cfg.torch_dtype, cfg.auto_map, cfg.quantization_config]).toEqual(['float32', undefined, undefined, undefined]);
    const out = path.join(dir, 'out');
    await writeModelDir(loadModel(src).model, out, { source: src, dtype: 'BF16' });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).dtype).toBe('bfloat16');
    expect(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')).toBe(fs.readFileSync(path.join(src, 'generation_config.json'), 'utf8'));
  });

  it("Kimi-K2 (yarn with mscale_all_dim): save -> load keeps the rope keys and the model's NLL", async () => {
    const dir = makeTmpDir('interop-kimi');
    const model = createModel(baseConfig('kimi-k2'), { seed: 5, std: 0.08 });
    const before = measure(model, evalIds()).nll;
    await saveModel(model, dir);
    const rp = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).rope_parameters;
    expect(rp).toMatchObject({ rope_type: 'yarn', mscale: 1, mscale_all_dim: 1, factor: 4 });
    expect(measure(loadModel(dir).model, evalIds()).nll).toBe(before);
  });
});
