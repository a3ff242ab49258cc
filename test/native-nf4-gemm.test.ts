/**
 * The native NF4 GEMM (native/src/nf4_gemm.cc, Backend.nf4Gemm) against the TypeScript reference
 * of src/quant: the weight dequantised by dequantizeNf4, then a dense GEMM.
 *
 * The native kernel dequantises W panel by panel into exactly the packed panels the dense native
 * GEMM builds from the dequantised float matrix, and runs the same blocked loop, so its result must
 * be bit-identical to the native dense GEMM on dequantizeNf4(W) (a scale or a table value off by
 * one ulp would show). With few rows of A (M <= 16, or C 16 columns wide or less) the dense GEMM
 * leaves its blocked path for its matrix-vector / skinny forms; the NF4 GEMM then dequantises W
 * a slab at a time into the same forms, and must still match bit for bit. With 2..16 rows and
 * blocks that tile W's rows in whole vectors (block 64, K a multiple of 64: an MoE expert's
 * products in QLoRA) the skinny NF4 kernels (native/src/nf4_skinny.cc) dequantise W in registers
 * instead: W^T sums as the dense dot form does (bit-identical to the dense GEMM), W (dX) as the
 * dense outer form does, which the dense GEMM takes for up to 8 rows, so there the reference is the
 * dense GEMM run on groups of 2..8 rows. It is also checked against the js reference GEMM with the GEMM error bound
 * tol * sum_k |A_ik W_kj| + |beta C_ij| (tol 1e-5), over edge sizes of every blocking level (1, odd
 * K that splits bytes between rows, blocks straddling rows, K past one 256-deep K block, N past
 * the 32-wide panels), both directions, beta 0 / 1 / 0.5, and double quantisation on and off.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantizeNf4, quantizeNf4, type Nf4Weight } from '../src/quant/index.js';
import type { Backend } from '../src/tensor/backend.js';
import { jsBackend } from '../src/tensor/backends/js/index.js';
import { loadNativeBackend, nativeAddonPath } from '../src/tensor/backends/native/index.js';
import { Rng } from '../src/tensor/index.js';

const built = existsSync(nativeAddonPath());
if (!built) console.warn(`native-nf4-gemm.test: SKIPPED, the addon is not built (${nativeAddonPath()} is missing)`);

function gaussian(n: number, rng: Rng, std = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

/** Calls the backend's nf4Gemm with the weight's fields. */
function nativeNf4(b: Backend, transW: boolean, M: number, A: Float32Array, w: Nf4Weight, beta: number, C: Float32Array): void {
  const [N, K] = w.shape as [number, number];
  const n = w.nested;
  b.nf4Gemm!(transW, M, N, K, A, w.codes, w.code, w.blockSize, w.absmax, n?.qabsmax ?? null, n?.nestedAbsmax ?? null,
    n?.nestedCode ?? null, n?.nestedBlockSize ?? 0, n?.offset ?? 0, beta, C);
}

describe.skipIf(!built)('native nf4Gemm equals the dequantise-then-GEMM reference', () => {
  const loaded = loadNativeBackend();
  const nb = ('backend' in loaded ? loaded.backend : null) as Backend;

  it('is provided by the native backend', () => {
    expect('error' in loaded ? loaded.error : '').toBe('');
    expect(typeof nb.nf4Gemm).toBe('function');
  });

  // [M, N, K]: W is [N, K]
  const shapes: [number, number, number][] = [
    [1, 1, 2], [1, 70, 300], [1, 300, 600], [3, 5, 7], [2, 7, 63], [13, 33, 64], [20, 17, 70], [25, 40, 130], [7, 65, 300],
    [8, 200, 270], [16, 9, 40], [37, 100, 513], [130, 96, 256],
    // the skinny NF4 kernels: 2..16 rows, K a multiple of the block (64); K past one 256-deep chunk
    // (W^T) and N past one 32-row block (W), a single-block W, two W rows
    [2, 2, 64], [5, 3, 128], [9, 40, 64], [12, 70, 320], [16, 33, 1024], [16, 300, 512], [11, 130, 768], [16, 1, 64],
  ];
  for (const doubleQuant of [true, false]) {
    for (const [M, N, K] of shapes) {
      for (const transW of [true, false]) {
        it(`W [${N}, ${K}] M=${M} transW=${transW} doubleQuant=${doubleQuant}: equals the native dense GEMM on the dequantised weight, within the GEMM bound of js`, () => {
          const rng = new Rng(M * 1000 + N * 10 + K + (doubleQuant ? 1 : 0));
          const q = quantizeNf4(gaussian(N * K, rng, 0.05), [N, K], { doubleQuant });
          expect(q.nested !== null).toBe(doubleQuant);
          const W = dequantizeNf4(q);
          const rows = transW ? K : N;  // A's columns
          const cols = transW ? N : K;  // C's columns
          const A = gaussian(M * rows, rng);
          for (const beta of [0, 1, 0.5]) {
            const C0 = beta === 0 ? new Float32Array(M * cols).fill(NaN) : gaussian(M * cols, rng);
            const got = C0.slice();
            nativeNf4(nb, transW, M, A, q, beta, got);
            const dense = C0.slice();
            if (transW) {
              nb.gemm(false, true, M, N, K, 1, A, W, beta, dense);
            } else if (M > 8 && M <= 16 && K % 64 === 0) {
              // the outer form's sums: the dense GEMM on groups of 2..8 rows (one row would be its gemv)
              const groups = Math.ceil(M / 8);
              for (let g = 0, r0 = 0; g < groups; g++) {
                const rows = Math.floor(M / groups) + (g < M % groups ? 1 : 0);
                nb.gemm(false, false, rows, K, N, 1, A.subarray(r0 * N), W, beta, dense.subarray(r0 * K, (r0 + rows) * K));
                r0 += rows;
              }
            } else {
              nb.gemm(false, false, M, K, N, 1, A, W, beta, dense);
            }
            expect(got, `beta ${beta}`).toEqual(dense);
            // the js reference, within the GEMM error bound
            const ref = Float64Array.from(C0);
            const bound = new Float64Array(M * cols);
            const W64 = Float64Array.from(W);
            const A64 = Float64Array.from(A);
            const absA = A64.map(Math.abs);
            const absW = W64.map(Math.abs);
            if (transW) {
              jsBackend.gemm(false, true, M, N, K, 1, A64, W64, beta, ref);
              jsBackend.gemm(false, true, M, N, K, 1, absA, absW, 0, bound);
            } else {
              jsBackend.gemm(false, false, M, K, N, 1, A64, W64, beta, ref);
              jsBackend.gemm(false, false, M, K, N, 1, absA, absW, 0, bound);
            }
            for (let i = 0; i < ref.length; i++) {
              const tol = 1e-5 * (bound[i]! + (beta === 0 ? 0 : Math.abs(beta * C0[i]!))) + 1e-30;
              if (!(Math.abs(got[i]! - ref[i]!) <= tol)) {
                expect.fail(`beta ${beta}: C[${i}] = ${got[i]}, reference ${ref[i]} (bound ${tol})`);
              }
            }
          }
        });
      }
    }
  }

  it('K = 0 scales C by beta; M = 0 leaves C alone; results are identical run to run', () => {
    const q = quantizeNf4(new Float32Array(0), [4, 0]);
    const C = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    nativeNf4(nb, true, 2, new Float32Array(0), q, 0.5, C);
    expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
    const rng = new Rng(5);
    const w = quantizeNf4(gaussian(300 * 200, rng, 0.1), [300, 200]);
    const A = gaussian(150 * 200, rng);
    const C1 = new Float32Array(150 * 300);
    const C2 = new Float32Array(150 * 300);
    nativeNf4(nb, true, 150, A, w, 0, C1);
    nativeNf4(nb, true, 150, A, w, 0, C2);
    expect(C1).toEqual(C2);
    const untouched = Float32Array.from([9]);
    nativeNf4(nb, true, 0, new Float32Array(0), w, 0, untouched);
    expect(untouched[0]).toBe(9);
  });

  it('refuses bad arguments with one-line errors naming the argument', () => {
    const rng = new Rng(6);
    const w = quantizeNf4(gaussian(8 * 16, rng), [8, 16], { doubleQuant: false });
    const A = new Float32Array(2 * 16);
    const C = new Float32Array(2 * 8);
    expect(() => nb.nf4Gemm!(true, 2, 8, 16, A, w.codes.subarray(0, 10), w.code, 64, w.absmax, null, null, null, 0, 0, 0, C))
      .toThrow(/nf4Gemm: codes has 10 elements, expected at least 64/);
    expect(() => nb.nf4Gemm!(true, 2, 8, 16, A, w.codes, w.code, 64, null, null, null, null, 0, 0, 0, C))
      .toThrow(/nf4Gemm: exactly one of absmax .* and qabsmax .* must be given/);
    expect(() => nb.nf4Gemm!(true, 2, 8, 16, A, w.codes, w.code, 0, w.absmax, null, null, null, 0, 0, 0, C))
      .toThrow(/nf4Gemm: blockSize must be >= 1/);
    expect(() => nb.nf4Gemm!(true, 3, 8, 16, A, w.codes, w.code, 64, w.absmax, null, null, null, 0, 0, 0, C))
      .toThrow(/nf4Gemm: A has 32 elements, expected at least 48/);
  });
});
