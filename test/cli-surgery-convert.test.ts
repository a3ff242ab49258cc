/**
 * `moe-tune surgery` and `moe-tune convert` produce loadable models whose logits equal the library
 * path's (the same passes / conversions applied in process), write --out atomically and refuse to
 * replace it without --force.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, parseSurgerySpec } from '../src/adapters/index.js';
import { decomposeFfn } from '../src/convert/index.js';
import { applyLora, LoraLinear } from '../src/lora/index.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { maxDiff } from './helpers/compare.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');
const LLAMA = path.join(FIXTURES, 'tiny-llama');
const IDS = path.join(FIXTURES, 'ids.jsonl');

function logits(model: CausalLM): Float32Array {
  const ids = new Int32Array(24).map((_, i) => (i * 7 + 3) % model.config.vocabSize);
  return withScope(() => noGrad(() => Float32Array.from(model.forward(new Tensor(ids, [2, 12]), { ctx: ForwardContext.eval() }).f)));
}

function ok(args: string[]): string {
  const r = runCli(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

describe('moe-tune surgery', () => {
  it('null experts + LoRA, and ternary rows: the saved model equals the library path; the report shows the step-0 loss', () => {
    const dir = makeTmpDir('cli-surgery');
    const out = path.join(dir, 'adamoe');
    const specs = ['null-experts:m=4,top_k=3', 'lora:r=4,alpha=8,targets=gate|gate2|w1'];
    const text = ok(['surgery', '--model', MIXTRAL, ...specs.flatMap((s) => ['--pass', s]), '--seed', '3', '--data', IDS, '--out', out]);
    expect(text).toMatch(/^null-experts:m=4,top_k=3: \+\d+ parameters/m);
    expect(text).toMatch(/step-0 loss on the batch: (\d+\.\d+) -> \1 \(change \+0\.000e\+0\)/);
    expect(text).toContain(`wrote ${out}`);
    const lib = loadModel(MIXTRAL).model;
    applySurgery(lib, specs.map(parseSurgerySpec), { seed: 3 });
    const saved = loadModel(out).model;
    expect(saved.config.extensions.null_experts).toMatchObject({ m: 4, top_k: 3 });
    expect(saved.getModule('model.layers.0.block_sparse_moe.gate2')).toBeInstanceOf(LoraLinear);
    expect(maxDiff(logits(saved), logits(lib))).toBe(0);
    expect(maxDiff(logits(saved), logits(loadModel(MIXTRAL).model))).toBeLessThan(1e-5); // function preserved

    const tern = path.join(dir, 'ternary');
    const t2 = ok(['surgery', '--model', MIXTRAL, '--pass', 'ternary:zero=2', '--data', IDS, '--out', tern]);
    const change = Number(/change ([-+][\d.e+-]+)\)/.exec(t2)![1]);
    expect(change).not.toBe(0); // on a trained model the ternary rows change the function
    const libT = loadModel(MIXTRAL).model;
    applySurgery(libT, [parseSurgerySpec('ternary:zero=2')], { seed: 0 });
    expect(maxDiff(logits(loadModel(tern).model), logits(libT))).toBe(0);

    // --out is never replaced without --force
    expect(expectOneErrorLine(runCli(['surgery', '--model', MIXTRAL, '--pass', 'ternary:zero=2', '--out', tern]))).toMatch(/ternary: exists and is not empty \(pass --force to replace it\)$/);
    ok(['surgery', '--model', MIXTRAL, '--pass', 'null-experts:m=8,top_k=2', '--out', tern, '--force']);
    expect(loadModel(tern).model.config.extensions.null_experts).toMatchObject({ m: 8, top_k: 2 });
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]); // no temp dirs left
  });
});

describe('moe-tune convert', () => {
  it('decompose: equals decomposeFfn and the dense model (t = 1, capacity = N)', () => {
    const dir = makeTmpDir('cli-decompose');
    const out = path.join(dir, 'xmoe');
    ok(['convert', 'decompose', '--model', LLAMA, '--experts', '4', '--out', out]);
    const saved = loadModel(out).model;
    expect(saved.config.architecture).toBe('XMoEForCausalLM');
    const dense = loadModel(LLAMA).model;
    expect(maxDiff(logits(saved), logits(decomposeFfn(dense, { experts: 4 }).model))).toBe(0);
    expect(maxDiff(logits(saved), logits(dense))).toBeLessThan(1e-4); // float32 sums in another order
    expect(expectOneErrorLine(runCli(['convert', 'decompose', '--model', LLAMA, '--experts', '5', '--out', path.join(dir, 'bad')]))).toMatch(/decompose-ffn: .*5/);
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
  });

  it('export-peft, import-peft and merge round-trip a LoRA with random B', () => {
    const dir = makeTmpDir('cli-peft');
    const lora = loadModel(LLAMA).model;
    applyLora(lora, { targets: ['q_proj', 'v_proj', 'down_proj'], r: 4, alpha: 8, seed: 1 });
    const rng = new Rng(9);
    for (const [, m] of lora.namedModules()) {
      if (m instanceof LoraLinear) for (let i = 0; i < m.lora_B.weight.size; i++) m.lora_B.weight.f[i] = (rng.next() - 0.5) * 0.2;
    }
    const loraDir = path.join(dir, 'with-lora');
    return saveModel(lora, loraDir).then(() => {
      const want = logits(lora);
      const adapter = path.join(dir, 'adapter');
      ok(['convert', 'export-peft', '--model', loraDir, '--out', adapter, '--base', 'meta-llama/Llama-2-7b-hf']);
      expect(fs.readdirSync(adapter).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const cfg = JSON.parse(fs.readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, base_model_name_or_path: 'meta-llama/Llama-2-7b-hf' });

      const imported = path.join(dir, 'imported');
      ok(['convert', 'import-peft', '--model', LLAMA, '--adapter', adapter, '--out', imported, '--dtype', 'f32']);
      expect(maxDiff(logits(loadModel(imported).model), want)).toBe(0);
      // without --dtype the output keeps the input checkpoint's dtype (tiny-llama is bf16)
      const importedBf16 = path.join(dir, 'imported-bf16');
      ok(['convert', 'import-peft', '--model', LLAMA, '--adapter', adapter, '--out', importedBf16]);
      expect(JSON.parse(fs.readFileSync(path.join(importedBf16, 'config.json'), 'utf8'))['dtype']).toBe('bfloat16');
      expect(loadModel(importedBf16).dtypes).toEqual({ BF16: expect.any(Number) });

      const merged = path.join(dir, 'merged');
      ok(['convert', 'merge', '--model', loraDir, '--out', merged]);
      const m = loadModel(merged);
      expect(JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8'))['moe_tune']).toBeUndefined();
      const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      expect(maxDiff(logits(m.model), want) / scale).toBeLessThan(1e-5); // W + sBA in float32 vs Wx + sBAx
      const merged2 = path.join(dir, 'merged2');
      ok(['convert', 'merge', '--model', LLAMA, '--adapter', adapter, '--out', merged2, '--dtype', 'f32']);
      expect(maxDiff(logits(loadModel(merged2).model), logits(m.model))).toBe(0);

      expect(expectOneErrorLine(runCli(['convert', 'merge', '--model', LLAMA, '--out', path.join(dir, 'm3')]))).toMatch(/mergeLora: LlamaForCausalLM has no LoRA adapters$/);
      expect(fs.existsSync(path.join(dir, 'm3'))).toBe(false);
      expect(expectOneErrorLine(runCli(['convert', 'import-peft', '--model', LLAMA, '--adapter', path.join(dir, 'nope'), '--out', path.join(dir, 'm4')]))).toMatch(/nope\/adapter_config\.json: file not found/);
    });
  });
});
