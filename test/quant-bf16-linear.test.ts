/**
 * Frozen bf16 linears and token embeddings (QLoRA keeps the layers it does not quantise, the LM
 * head and the embeddings, in its 16-bit compute dtype): bf16Linear widens W panel by panel and
 * equals the float linear on the widened weight (values and input gradients; native and js
 * backends; finite differences in float64); loadModelQuantized({ bf16Frozen }) reads the stored
 * bits straight into a Bf16Linear / Bf16Embedding with the same logits as float32, and a saved or
 * dequantised model gets the same float values back.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ArrayToBf16 } from '../src/io/index.js';
import { Linear } from '../src/models/linear.js';
import { Embedding } from '../src/models/embedding.js';
import { loadBase } from '../src/recipes/finetune-setup.js';
import { RecipeSchema } from '../src/recipes/schema.js';
import { Bf16Embedding, Bf16Linear, bf16Embeddings, bf16Linear, bf16Sites, dequantizeModel, loadModelQuantized, PANEL_ROWS, saveQuantizedModel } from '../src/quant/index.js';
import { backward, gradOf, nativeAvailable, noGrad, ops, Rng, setBackend, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';

function bf16Weight(n: number, k: number, rng: Rng): { bits: Uint16Array; f: Float32Array } {
  const w = Float32Array.from({ length: n * k }, () => rng.normal() * 0.1);
  const bits = new Uint16Array(n * k);
  float32ArrayToBf16(w, bits);
  const f = new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer);
  return { bits, f };
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / Math.max(s, 1e-30);
}

/** y and dx of sum(y * R) for the bf16 op and for ops.linear on the widened weight. */
function both(N: number, K: number, M: number): { y: [Float32Array, Float32Array]; dx: [Float32Array, Float32Array] } {
  const rng = new Rng(3);
  const { bits, f } = bf16Weight(N, K, rng);
  const xs = Float32Array.from({ length: M * K }, () => rng.normal());
  const r = Float32Array.from({ length: M * N }, () => rng.normal());
  const run = (lin: (x: Tensor) => Tensor): [Float32Array, Float32Array] => {
    const x = new Tensor(xs.slice(), [1, M, K], true);
    const y = withScope(() => {
      const out = lin(x);
      backward(ops.sum(ops.mul(out, new Tensor(r, [1, M, N]))));
      return (out.f as Float32Array).slice();
    });
    const dx = (gradOf(x)!.f as Float32Array).slice();
    zeroGrad([x]);
    return [y, dx];
  };
  const a = run((x) => bf16Linear(x, bits, [N, K]));
  const w = new Tensor(f, [N, K]);
  const b = run((x) => ops.linear(x, w));
  return { y: [a[0], b[0]], dx: [a[1], b[1]] };
}

describe('bf16Linear == linear on the widened weight', () => {
  // more rows than two panels, and a last panel that is not full
  const N = 2 * PANEL_ROWS + 37;
  for (const backend of nativeAvailable() ? (['native', 'js'] as const) : (['js'] as const)) {
    it(`${backend} backend: values and input gradients over ${N} rows (panels of ${PANEL_ROWS})`, () => {
      setBackend(backend);
      try {
        const { y, dx } = both(N, 24, 5);
        // the panels change only the order of the dx sum over rows
        expect(relErr(y[0], y[1])).toBeLessThan(1e-6);
        expect(relErr(dx[0], dx[1])).toBeLessThan(1e-5);
        expect(dx[0].some((v) => v !== 0)).toBe(true);
      } finally {
        setBackend('auto');
      }
    });
  }

  it('gradient matches finite differences (float64)', () => {
    const rng = new Rng(8);
    const { bits } = bf16Weight(7, 5, rng);
    const r = gradcheck((x) => bf16Linear(x!, bits, [7, 5]), [rand64([2, 3, 5], rng)]);
    expect(r.maxRelError).toBeLessThan(1e-6);
  });

  it('refuses an input that does not fit, and a Linear whose values are not bf16', () => {
    const { bits } = bf16Weight(4, 3, new Rng(1));
    expect(() => bf16Linear(Tensor.zeros([2, 5]), bits, [4, 3])).toThrow(/bf16Linear: input \[2, 5\] \(float32\) does not fit weight \[4, 3\]/);
    const lin = new Linear(Tensor.param(Float32Array.from([1, 0.1, 2, 3]), [2, 2]));
    expect(Bf16Linear.fromLinear(lin)).toBeNull(); // 0.1 is not a bf16 value
    const exact = new Linear(Tensor.param(Float32Array.from([1, 0.5, -2, 3]), [2, 2], 'head.weight'));
    const b = Bf16Linear.fromLinear(exact)!;
    expect(Array.from(b.toLinear().weight.f)).toEqual([1, 0.5, -2, 3]);
    expect(b.storageBytes).toBe(8);
  });
});

describe('loadModelQuantized with bf16Frozen', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bf16-head-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads the head and embeddings as bf16 bits: same logits as float32, half the bytes; a saved model keeps them', async () => {
    const dir = path.join(root, 'mixtral');
    await writeTinyCheckpoint(dir, tinyMixtralConfig(), { dtype: 'BF16', seed: 4 });
    const plain = loadModelQuantized(dir);
    const half = loadModelQuantized(dir, { bf16Frozen: ['lm_head', 'model.embed_tokens'] });
    expect(bf16Sites(half.model).map((s) => s.path)).toEqual(['lm_head']);
    expect(bf16Embeddings(half.model).map(([p]) => p)).toEqual(['model.embed_tokens']);
    expect(half.model.model.embed_tokens).toBeInstanceOf(Bf16Embedding);
    expect(bf16Sites(plain.model)).toEqual([]);
    expect(half.stats.floatParams).toBe(plain.stats.floatParams);
    const head = half.model.lm_head as Bf16Linear;
    expect(head.storageBytes).toBe(96 * 32 * 2);
    const ids = new Tensor(Int32Array.from([5, 9, 1, 33, 70, 2, 11, 4]), [1, 8]);
    const logits = (m: typeof plain.model): number[] => withScope(() => noGrad(() => m.forward(ids).toArray()));
    const a = logits(plain.model);
    const b = logits(half.model);
    expect(relErr(b, a)).toBeLessThan(1e-6);
    // saved (float32 on disk) and read back without the option: the same head values
    const out = path.join(root, 'saved');
    await saveQuantizedModel(half.model, out);
    const again = loadModelQuantized(out);
    expect(relErr((again.model.lm_head as Linear).weight.f, (plain.model.lm_head as Linear).weight.f)).toBe(0);
    expect(relErr(logits(again.model), a)).toBeLessThan(1e-6);
    const table = (m: typeof plain.model): Float32Array => (m.model.embed_tokens as Embedding).weight.f as Float32Array;
    expect(relErr(table(again.model), table(plain.model))).toBe(0);
    // dequantizeModel turns them back into float modules with the same values
    expect(dequantizeModel(half.model)).toEqual(expect.arrayContaining(['lm_head', 'model.embed_tokens']));
    expect(relErr(table(half.model), table(plain.model))).toBe(0);
    expect(relErr((half.model.lm_head as Linear).weight.f, (plain.model.lm_head as Linear).weight.f)).toBe(0);
  });

  it('keeps a tied table float (the head reads it), and says when a bf16 table gets an id outside the vocabulary', async () => {
    const dir = path.join(root, 'tied');
    await writeTinyCheckpoint(dir, tinyMixtralConfig({ tie_word_embeddings: true }), { dtype: 'BF16', seed: 5 });
    const tied = loadModelQuantized(dir, { bf16Frozen: ['lm_head', 'model.embed_tokens'] });
    expect(tied.model.model.embed_tokens).toBeInstanceOf(Embedding);
    const e = new Bf16Embedding(new Uint16Array(6), [3, 2], 'model.embed_tokens');
    expect(() => e.forward(new Tensor(Int32Array.from([1, 3]), [2]))).toThrow('embedding model.embed_tokens: token id 3 at position 1 is outside the vocabulary [0, 3)');
  });
});

describe('QLoRA recipes keep the frozen head and embeddings bf16', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bf16-recipe-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('with LoRA and the default trainable set only; a recipe that may train them gets float32', async () => {
    const dir = path.join(root, 'm');
    await writeTinyCheckpoint(dir, tinyMixtralConfig(), { dtype: 'BF16', seed: 6 });
    const recipe = (extra: Record<string, unknown>) => RecipeSchema.parse({
      name: 'q', paper: 'none', kind: 'finetune', train: { lr: 1e-3, steps: 1, batch_size: 1, seq_len: 8 },
      quantization: { method: 'nf4' }, ...extra,
    });
    const lora = { lora: { r: 4, alpha: 8, targets: ['q_proj'] } };
    const kinds = (r: ReturnType<typeof recipe>): string[] => {
      const m = loadBase(r, { kind: 'dir', dir }, null, 1);
      return [m.model.embed_tokens.constructor.name, m.lm_head!.constructor.name];
    };
    expect(kinds(recipe(lora))).toEqual(['Bf16Embedding', 'Bf16Linear']);
    expect(kinds(recipe({}))).toEqual(['Embedding', 'Linear']);
    expect(kinds(recipe({ ...lora, train: { lr: 1e-3, steps: 1, batch_size: 1, seq_len: 8, trainable: ['current', 'embeddings'] } }))).toEqual(['Embedding', 'Linear']);
  });
});
