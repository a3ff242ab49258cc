/**
 * The 4-bit linear layer: its tiled GEMM equals a dense GEMM with the dequantised weight, the
 * quantised linear + LoRA path (LoraLinear around Nf4Linear, float64) passes a finite-difference
 * gradient check (weights of several tiles, blocks straddling rows), and the frozen 4-bit weight
 * never receives a gradient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LoraLinear } from '../src/lora/index.js';
import { Linear } from '../src/models/linear.js';
import { Nf4Linear, dequantizeNf4, nf4Gemm, nf4Linear, quantizeNf4, setNf4TileElements, tileRows, TILE_ELEMENTS } from '../src/quant/index.js';
import { backward, gradOf, kernelsFor, ops, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';

function gaussian(n: number, rng: Rng, std = 1): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = rng.normal() * std;
  return w;
}

/** A plain LoRA pair built from ops: y = base(x) + (alpha / r) * (x A^T) B^T. */
function loraPath(base: (x: Tensor) => Tensor, A: Tensor, B: Tensor, scale: number): (x: Tensor) => Tensor {
  return (x) => ops.add(base(x), ops.scale(ops.linear(ops.linear(x, A), B), scale));
}

afterEach(() => {
  setNf4TileElements(TILE_ELEMENTS);
});

describe('nf4Gemm (tiled reference kernel)', () => {
  // tile sizes in values: the default (one tile), 7 rows of 40 (tiles cut blocks of 64), one row
  for (const [N, K, tile, label] of [[20, 40, TILE_ELEMENTS, 'one tile'], [45, 40, 280, 'rows 7 at a time'], [9, 300, 300, 'one row per tile'], [600, 512, TILE_ELEMENTS, 'default tile, 2 tiles']] as const) {
    it(`matches a dense GEMM with the dequantised weight (W [${N}, ${K}], ${label})`, () => {
      setNf4TileElements(tile);
      expect(Math.ceil(N / tileRows(N, K))).toBe(label === 'one tile' ? 1 : label === 'rows 7 at a time' ? 7 : label === 'one row per tile' ? 9 : 2);
      const rng = new Rng(N + K);
      const q = quantizeNf4(gaussian(N * K, rng, 0.05), [N, K]);
      const W = Float64Array.from(dequantizeNf4(q));
      const M = 3;
      const js = kernelsFor({ dtype: 'float64' });
      const x = Float64Array.from(gaussian(M * K, rng));
      const want = new Float64Array(M * N);
      js.gemm(false, true, M, N, K, 1, x, W, 0, want);
      const got = new Float64Array(M * N).fill(NaN);
      nf4Gemm(true, M, N, K, x, q, 0, got);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 12);
      // backward form, accumulating (beta = 1)
      const dy = Float64Array.from(gaussian(M * N, rng));
      const base = Float64Array.from(gaussian(M * K, rng));
      const wantDx = base.slice();
      js.gemm(false, false, M, K, N, 1, dy, W, 1, wantDx);
      const gotDx = base.slice();
      nf4Gemm(false, M, N, K, dy, q, 1, gotDx);
      for (let i = 0; i < wantDx.length; i++) expect(gotDx[i]).toBeCloseTo(wantDx[i]!, 10);
    });
  }

  it('float32 forward equals the float Linear with the dequantised weight', () => {
    const rng = new Rng(4);
    const q = quantizeNf4(gaussian(48 * 64, rng, 0.1), [48, 64]);
    const lin = new Linear(Tensor.param(dequantizeNf4(q), [48, 64]));
    const x = new Tensor(gaussian(5 * 64, rng), [5, 64]);
    const a = withScope(() => nf4Linear(x, q).toArray());
    const b = withScope(() => lin.forward(x).toArray());
    expect(a).toEqual(b);
  });
});

describe('gradient check: 4-bit linear + LoRA (float64, central differences, eps 1e-6)', () => {
  // tiles of 5 rows (200 values: tile edges cut the 64-value blocks) on the second case
  for (const [N, K, T, tile] of [[24, 40, 3, TILE_ELEMENTS], [23, 40, 2, 200]] as const) {
    it(`W [${N}, ${K}], ${Math.ceil(N / Math.min(N, Math.floor(tile / K)))} tile(s): d/dx, d/dA, d/dB and d/dbias agree with finite differences to 1e-6 relative`, () => {
      setNf4TileElements(tile);
      const rng = new Rng(11);
      const q = quantizeNf4(gaussian(N * K, rng, 0.1), [N, K]);
      const r = 4;
      const x = rand64([2, T, K], rng);
      const A = rand64([r, K], rng, { std: 0.2 });
      const B = rand64([N, r], rng, { std: 0.2 });
      const bias = rand64([N], rng, { std: 0.1 });
      // the real LoRA layer (src/lora) around the 4-bit layer, in float64
      const layer = new LoraLinear(new Nf4Linear(q, bias), A, B, { r, alpha: 16 });
      const res = gradcheck((xx) => layer.forward(xx), [x, A, B, bias]);
      // and the same path written with plain ops
      const f = loraPath((xx) => nf4Linear(xx, q, bias), A, B, 16 / r);
      expect(withScope(() => f(x).toArray())).toEqual(withScope(() => layer.forward(x).toArray()));
      expect(res.perInput.length).toBe(4);
      expect(res.maxRelError).toBeLessThan(1e-6);
    });
  }

  it('the frozen 4-bit weight gets no gradient; only LoRA A/B, the bias and the input do', () => {
    const rng = new Rng(5);
    const base = new Linear(Tensor.param(gaussian(16 * 32, rng, 0.1), [16, 32], 'l.weight'), Tensor.param(new Float32Array(16), [16], 'l.bias'));
    const ql = Nf4Linear.fromLinear(base);
    expect([...ql.parameters().keys()]).toEqual(['bias']);
    ql.bias!.requiresGrad = false;
    const A = Tensor.param(gaussian(2 * 32, rng, 0.1), [2, 32], 'A');
    const B = Tensor.param(gaussian(16 * 2, rng, 0.1), [16, 2], 'B');
    zeroGrad([A, B, ql.bias!]);
    withScope(() => {
      const y = loraPath((x) => ql.forward(x), A, B, 2)(new Tensor(gaussian(3 * 32, rng), [3, 32]));
      backward(ops.sum(ops.square(y)));
    });
    expect(gradOf(A)).not.toBeNull();
    expect(gradOf(B)).not.toBeNull();
    expect(gradOf(ql.bias!)).toBeNull();
  });
});
