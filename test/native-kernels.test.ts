/**
 * The native backend (C++ addon) against the js reference backend, kernel by kernel, forward and
 * backward, on seeded random inputs.
 *
 * Error measure: max_i |native_i - js_i| / max(|js_i|, 1e-2 * rms(js)). It is the relative error
 * wherever an output is not much smaller than its neighbours; outputs that cancel to near zero
 * (sums of terms of both signs) are judged against 1% of the array's RMS, since float32
 * accumulation error scales with the terms, not with their sum. GEMM uses the exact bound
 * tol * (|alpha| sum_k |A_ik B_kj| + |beta C_ij|) instead. Tolerance 1e-5 everywhere (~170 ulp);
 * the native kernels accumulate long sums in double or in 16 float lanes, which keeps them ~10-100x
 * below it.
 *
 * Attention's out is a P-weighted mean of v rows of both signs, so it is judged against the same
 * mean of |v| (the GEMM-style bound). Two outputs are compared normwise (max_i |native_i - js_i| / max_i |js_i|), with the reason:
 * - attention dq / dk / dv: dS = P (dP - D) sums to zero over each row by construction
 *   (D = rowsum(dout * out)), so single entries cancel to ~0 (the first causal row's dq is exactly
 *   0) and carry the float32 rounding of the O(1) terms; the measured normwise error is 3e-7..9e-7.
 * - rmsnorm dw: a sum over all rows; the js reference rounds dw to float32 after every row
 *   (sqrt(rows) roundings), the native kernel sums in double, so the reference is the noisier one.
 *
 * Skipped (with the reason) only when build/Release/moe_tune_native.node does not exist; an addon
 * that exists but does not load fails the first test.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gemmGroupedReference, type Backend, type BinaryOp, type FloatArray, type ReduceOp, type UnaryOp } from '../src/tensor/backend.js';
import { jsBackend } from '../src/tensor/backends/js/index.js';
import { loadNativeBackend, nativeAddonPath, nativeBuildInfo } from '../src/tensor/backends/native/index.js';

const TOL = 1e-5;
const built = existsSync(nativeAddonPath());
if (!built) {
  console.warn(`native-kernels.test: SKIPPED, the addon is not built (${nativeAddonPath()} is missing); ` +
    'run `npm rebuild moe-tune` with a C++ compiler installed');
}

/** Seeded uniform generator (mulberry32). */
class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  f32(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  ints(count: number, n: number): Int32Array {
    const a = new Int32Array(count);
    for (let i = 0; i < count; i++) a[i] = this.int(n);
    return a;
  }
}

function maxRelError(actual: FloatArray, expected: FloatArray): number {
  expect(actual.length).toBe(expected.length);
  let ss = 0;
  for (let i = 0; i < expected.length; i++) ss += expected[i]! * expected[i]!;
  const floor = 1e-2 * Math.sqrt(ss / Math.max(1, expected.length));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) return Infinity;
      continue;
    }
    if (e === a) continue;
    const err = Math.abs(a - e) / Math.max(Math.abs(e), floor, 1e-30);
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

function expectClose(what: string, actual: FloatArray, expected: FloatArray, tol = TOL): void {
  const err = maxRelError(actual, expected);
  expect(err, `${what}: max relative error ${err.toExponential(2)} > ${tol}`).toBeLessThanOrEqual(tol);
}

/** max |actual - expected| relative to max |expected| (see the header for where this is used). */
function expectCloseNormwise(what: string, actual: FloatArray, expected: FloatArray, tol = TOL): void {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    diff = d > diff || Number.isNaN(d) ? d : diff;
    ref = Math.max(ref, Math.abs(expected[i]!));
  }
  const err = diff / Math.max(ref, 1e-30);
  expect(err, `${what}: normwise relative error ${err.toExponential(2)} > ${tol}`).toBeLessThanOrEqual(tol);
}

function copy(a: Float32Array): Float32Array {
  return new Float32Array(a);
}

describe.skipIf(!built)('native kernels match the js reference backend', () => {
  const loaded = loadNativeBackend();
  const nb = ('backend' in loaded ? loaded.backend : null) as Backend;
  const js = jsBackend;
  const r = new Rand(20240611);

  it('loads, reports its threads and refuses float64 / bad indices with one-line errors', () => {
    expect('error' in loaded ? loaded.error : '').toBe('');
    expect(nb.name).toBe('native');
    expect(nb.threads).toBeGreaterThanOrEqual(1);
    const a = new Float32Array(4);
    expect(() => nb.gemm(false, false, 2, 2, 2, 1, new Float64Array(4), a, 0, a)).toThrow(
      /gemm: A is a Float64Array; the native backend computes in float32 only/);
    expect(() => nb.gemm(false, false, 2, 3, 2, 1, a, a, 0, a)).toThrow(/gemm: B has 4 elements, expected at least 6/);
    expect(() => nb.gatherRows(a, Int32Array.from([0, 2]), 2, 2, a)).toThrow(/gatherRows: idx\[1\] = 2 is out of range/);
    expect(() => nb.crossEntropyForward(a, Int32Array.from([5]), 1, 4, -100, a, a)).toThrow(
      /crossEntropyForward: targets\[0\] = 5 is out of range/);
    expect(() => nb.attentionForward(a, a, a, 1, 1, 1, 3, 2, 1, 1, false, a, a)).toThrow(/H \(3\) must be a positive multiple of Hkv \(2\)/);
    expect(() => nb.rope(a, a, a, 1, 1, 1, 3, false, a)).toThrow(/rope: Dh must be even/);
  });

  // test/native-isa-variants.test.ts runs this file (and the other native kernel tests) once per ISA
  // build, with MOE_TUNE_NATIVE_ADDON naming the build and MOE_TUNE_EXPECT_ISA the ISA it must report.
  it('reports the ISA it was built for', () => {
    const info = nativeBuildInfo();
    expect(info?.path).toBe(nativeAddonPath());
    expect(['avx512', 'avx2', 'avx', 'portable']).toContain(info?.isa);
    const expected = process.env['MOE_TUNE_EXPECT_ISA'];
    if (expected) expect(info?.isa, `${info?.path} was asked for as the ${expected} variant`).toBe(expected);
    console.log(`native-kernels.test: addon ${info?.path}: ISA ${info?.isa}, GEMM micro-kernel ${info?.kernel}`);
  });

  /** native vs js GEMM, each entry judged against tol (|alpha| sum_k |A_ik B_kj| + |beta C_ij|). */
  function checkGemm(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, beta: number): void {
    const A = r.f32(M * K);
    const B = r.f32(K * N);
    const C0 = beta === 0 ? new Float32Array(M * N).fill(NaN) : r.f32(M * N);
    const Cn = copy(C0);
    const Cj = copy(C0);
    nb.gemm(ta, tb, M, N, K, alpha, A, B, beta, Cn);
    js.gemm(ta, tb, M, N, K, alpha, A, B, beta, Cj);
    const bound = new Float32Array(M * N);
    js.gemm(ta, tb, M, N, K, Math.abs(alpha), A.map(Math.abs), B.map(Math.abs), 0, bound);
    let worst = 0;
    for (let i = 0; i < M * N; i++) {
      const scale = bound[i]! + (beta === 0 ? 0 : Math.abs(beta * C0[i]!)) + 1e-30;
      const err = Math.abs(Cn[i]! - Cj[i]!) / scale;
      if (!(err <= worst)) worst = err;
    }
    const tag = `gemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} M=${M} N=${N} K=${K} alpha=${alpha} beta=${beta}`;
    expect(worst, `${tag}: error ${worst.toExponential(2)} relative to |alpha||A||B| + |beta C|`).toBeLessThanOrEqual(TOL);
  }

  it('gemm: every transpose combination over edge-tile sizes 1, 5, 17, 64, 255, alpha != 1, beta 0 / 1 / 0.5', () => {
    const sizes = [1, 5, 17, 64, 255];
    let cases = 0;
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        for (const M of sizes) {
          for (const N of sizes) {
            for (const K of sizes) {
              checkGemm(ta, tb, M, N, K, [0.75, -1.5, 1][cases % 3]!, [0, 1, 0.5][cases % 3]!);
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBe(500);
  });

  it('gemm: every row count of a last, partial micro-tile (M = 17..40 past the skinny path), beta 0 / 1 / 0.5', () => {
    // the blocked path computes a last tile of M mod MR rows (MR is 6 or 12) with a kernel of
    // exactly that many rows, written straight into C; C's rows past M must stay untouched
    for (let M = 17; M <= 40; M++) {
      const beta = [0, 1, 0.5][M % 3]!;
      checkGemm(false, true, M, 96, 33, 1, beta);
      checkGemm(M % 2 === 0, M % 4 < 2, M, 64, 20, -0.5, beta);
    }
    const guard = r.f32(30 * 64);
    const C = copy(guard);
    nb.gemm(false, false, 29, 64, 20, 1, r.f32(29 * 20), r.f32(20 * 64), 0, C.subarray(0, 29 * 64));
    expect(Array.from(C.subarray(29 * 64))).toEqual(Array.from(guard.subarray(29 * 64)));
  });

  it('gemm: large threaded shapes (the expert and attention projections)', () => {
    for (const [M, N, K] of [[512, 512, 256], [128, 512, 256], [300, 257, 129], [2, 700, 300], [700, 3, 300]] as const) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) checkGemm(ta, tb, M, N, K, 1, 0);
    }
  });

  it('gemm: skinny shapes (one side 2..16: router and LoRA products), every transpose combination, beta 0 / 1 / 0.5', () => {
    // short side 2, 8 (one group), 9 and 16 (two groups) against long sides that split across
    // threads and leave partial vectors (1100, 301), K with a partial 16-lane tail (300, 1030, 7)
    let cases = 0;
    for (const [S, L, K] of [[8, 1100, 300], [16, 301, 1030], [9, 1100, 7], [2, 513, 256], [13, 40, 33]] as const) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          checkGemm(ta, tb, L, S, K, [1, 0.75, -1.5][cases % 3]!, [0, 1, 0.5][cases % 3]!);  // short N
          checkGemm(ta, tb, S, L, K, [1, 0.75, -1.5][cases % 3]!, [0.5, 0, 1][cases % 3]!);  // short M
          cases++;
        }
      }
    }
    expect(cases).toBe(20);
  });

  it('gemmGrouped: equals gemm on each product (bitwise) and the js reference loop; views into shared buffers', () => {
    expect(typeof nb.gemmGrouped).toBe('function');
    // expert-like groups: token counts 0..300 over 8 experts, sliced from one gathered buffer
    const counts = [98, 0, 5, 13, 300, 150, 64, 1];
    const total = counts.reduce((a, b) => a + b, 0);
    for (const [ta, tb] of [[false, true], [false, false], [true, false], [true, true]] as const) {
      for (const beta of [0, 1]) {
        const N = 96;
        const K = 70;
        // forward-like (M = tokens): A_i = rows of one [total, K] buffer; TN weight-gradient-like
        // (K = tokens) when ta: A_i = [tokens, N]^T slices
        const Ms = Int32Array.from(counts.map((c) => (ta ? N : c)));
        const Ks = Int32Array.from(counts.map((c) => (ta ? c : K)));
        const Ns = Int32Array.from(counts.map(() => (ta ? K : N)));
        const Abuf = r.f32(total * Math.max(N, K));
        const As: Float32Array[] = [];
        const Bs: Float32Array[] = [];
        const Cs: Float32Array[] = [];
        const Cref: Float32Array[] = [];
        const Cjs: Float64Array[] = [];
        let off = 0;
        for (let i = 0; i < counts.length; i++) {
          const [M, Nn, Kk] = [Ms[i]!, Ns[i]!, Ks[i]!];
          As.push(Abuf.subarray(off, off + M * Kk));
          off += counts[i]! * Math.max(N, K);
          Bs.push(r.f32(Kk * Nn));
          const c0 = beta === 0 ? new Float32Array(M * Nn).fill(NaN) : r.f32(M * Nn);
          Cs.push(copy(c0));
          Cref.push(copy(c0));
          Cjs.push(Float64Array.from(c0));
        }
        nb.gemmGrouped!(ta, tb, Ms, Ns, Ks, 0.75, As, Bs, beta, Cs);
        for (let i = 0; i < counts.length; i++) {
          nb.gemm(ta, tb, Ms[i]!, Ns[i]!, Ks[i]!, 0.75, As[i]!, Bs[i]!, beta, Cref[i]!);
          expect(Buffer.from(Cs[i]!.buffer, Cs[i]!.byteOffset, Cs[i]!.byteLength)
            .equals(Buffer.from(Cref[i]!.buffer, Cref[i]!.byteOffset, Cref[i]!.byteLength)), `product ${i}`).toBe(true);
        }
        gemmGroupedReference(js, ta, tb, Ms, Ns, Ks, 0.75, As.map((a) => Float64Array.from(a)),
          Bs.map((b) => Float64Array.from(b)), beta, Cjs);
        for (let i = 0; i < counts.length; i++) expectClose(`gemmGrouped product ${i} vs js`, Cs[i]!, Float32Array.from(Cjs[i]!), 1e-4);
      }
    }
    const a = new Float32Array(4);
    expect(() => nb.gemmGrouped!(false, false, Int32Array.from([2]), Int32Array.from([2]), Int32Array.from([2]), 1, [a], [a], 0, []))
      .toThrow(/gemmGrouped: As, Bs and Cs must hold Ms.length = 1 arrays each, got 1, 1 and 0/);
    expect(() => nb.gemmGrouped!(false, false, Int32Array.from([2]), Int32Array.from([3]), Int32Array.from([2]), 1, [a], [a], 0, [a]))
      .toThrow(/gemmGrouped: Bs\[0\] has 4 elements, expected at least 6/);
  });

  it('gemm: K = 0 scales C by beta; results are bit-identical run to run', () => {
    const C = Float32Array.from([1, 2, 3, 4]);
    nb.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, C);
    expect(Array.from(C)).toEqual([0.5, 1, 1.5, 2]);
    const A = r.f32(200 * 300);
    const B = r.f32(300 * 100);
    const C1 = new Float32Array(200 * 100);
    const C2 = new Float32Array(200 * 100);
    nb.gemm(false, true, 200, 100, 300, 1, A, B, 0, C1);
    nb.gemm(false, true, 200, 100, 300, 1, A, B, 0, C2);
    expect(Buffer.from(C1.buffer).equals(Buffer.from(C2.buffer))).toBe(true);
  });

  it('binary: every op over same-shape, scalar, row-vector and general broadcasts', () => {
    const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min'];
    const cases: [number[], number[], number[]][] = [
      [[3, 5, 7], [3, 5, 7], [3, 5, 7]],
      [[3, 5, 7], [], [3, 5, 7]],
      [[3, 5, 7], [1], [3, 5, 7]],
      [[3, 5, 7], [7], [3, 5, 7]],
      [[], [4, 6], [4, 6]],
      [[5, 1], [3, 1, 7], [3, 5, 7]],
      [[2, 1, 4, 1], [3, 1, 5], [2, 3, 4, 5]],
      [[1, 9], [6, 1], [6, 9]],
      [[70000], [70000], [70000]],
      [[300, 257], [257], [300, 257]],
      [[300, 1], [300, 257], [300, 257]],
    ];
    for (const op of ops) {
      for (const [as, bs, os] of cases) {
        const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);
        const a = r.f32(size(as), -2, 2);
        const b = r.f32(size(bs), 0.5, 2);
        const on = new Float32Array(size(os));
        const oj = new Float32Array(size(os));
        nb.binary(op, a, as, b, bs, on, os);
        js.binary(op, a, as, b, bs, oj, os);
        expectClose(`binary ${op} [${as}] (op) [${bs}] -> [${os}]`, on, oj);
      }
    }
  });

  it('binary max / min propagate NaN from either side', () => {
    const a = Float32Array.from([NaN, 1, 2, -1]);
    const b = Float32Array.from([1, NaN, 1, 3]);
    for (const op of ['max', 'min'] as const) {
      const on = new Float32Array(4);
      const oj = new Float32Array(4);
      nb.binary(op, a, [4], b, [4], on, [4]);
      js.binary(op, a, [4], b, [4], oj, [4]);
      expect(Array.from(on)).toEqual(Array.from(oj));
    }
  });

  const unaryOps: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'square', 'abs', 'silu', 'sigmoid', 'relu', 'tanh'];
  const positiveOnly = new Set<UnaryOp>(['log', 'sqrt', 'rsqrt']);

  it('unary and unaryBackward: every op, small and threaded sizes', () => {
    for (const op of unaryOps) {
      for (const n of [13, 70001]) {
        const x = positiveOnly.has(op) ? r.f32(n, 0.05, 4) : r.f32(n, -6, 6);
        const yn = new Float32Array(n);
        const yj = new Float32Array(n);
        nb.unary(op, x, yn, n);
        js.unary(op, x, yj, n);
        expectClose(`unary ${op} n=${n}`, yn, yj);
        const dy = r.f32(n);
        const dxn = new Float32Array(n);
        const dxj = new Float32Array(n);
        nb.unaryBackward(op, x, yj, dy, dxn, n);
        js.unaryBackward(op, x, yj, dy, dxj, n);
        expectClose(`unaryBackward ${op} n=${n}`, dxn, dxj);
      }
    }
  });

  it('axpby (beta 0 does not read out) and fill', () => {
    for (const n of [7, 100003]) {
      const x = r.f32(n);
      const on = new Float32Array(n).fill(NaN);
      const oj = new Float32Array(n).fill(NaN);
      nb.axpby(1.5, x, 0, on, n);
      js.axpby(1.5, x, 0, oj, n);
      expectClose(`axpby beta=0 n=${n}`, on, oj);
      const o0 = r.f32(n);
      const on2 = copy(o0);
      const oj2 = copy(o0);
      nb.axpby(-0.5, x, 0.25, on2, n);
      js.axpby(-0.5, x, 0.25, oj2, n);
      expectClose(`axpby n=${n}`, on2, oj2);
      const f = new Float32Array(n + 3);
      nb.fill(f, 2.5, n);
      expect(f[0]).toBe(2.5);
      expect(f[n - 1]).toBe(2.5);
      expect(f[n]).toBe(0);
    }
  });

  it('reduce sum / max / min over [outer, axisLen, inner] views, and sumSquares', () => {
    const shapes: [number, number, number][] = [[3, 17, 1], [4, 9, 5], [1, 1000, 33], [2, 3000, 1], [7, 1, 3], [1, 200000, 1]];
    for (const op of ['sum', 'max', 'min'] as ReduceOp[]) {
      for (const [outer, axisLen, inner] of shapes) {
        const x = r.f32(outer * axisLen * inner);
        const on = new Float32Array(outer * inner);
        const oj = new Float32Array(outer * inner);
        nb.reduce(op, x, outer, axisLen, inner, on);
        js.reduce(op, x, outer, axisLen, inner, oj);
        expectClose(`reduce ${op} [${outer}, ${axisLen}, ${inner}]`, on, oj);
      }
    }
    for (const n of [1, 1000, 300001]) {
      const x = r.f32(n);
      const sn = nb.sumSquares(x, n);
      const sj = js.sumSquares(x, n);
      expect(Math.abs(sn - sj) / sj, `sumSquares n=${n}`).toBeLessThan(1e-12);
    }
  });

  it('rmsnorm forward and backward (dw accumulates)', () => {
    for (const [rows, dim] of [[5, 17], [64, 255], [300, 512], [1, 4096]] as const) {
      const x = r.f32(rows * dim, -2, 2);
      const w = r.f32(dim, 0.5, 1.5);
      const outN = new Float32Array(rows * dim);
      const outJ = new Float32Array(rows * dim);
      const rsN = new Float32Array(rows);
      const rsJ = new Float32Array(rows);
      nb.rmsnormForward(x, w, 1e-5, rows, dim, outN, rsN);
      js.rmsnormForward(x, w, 1e-5, rows, dim, outJ, rsJ);
      expectClose(`rmsnormForward out ${rows}x${dim}`, outN, outJ);
      expectClose(`rmsnormForward rstd ${rows}x${dim}`, rsN, rsJ);
      const dy = r.f32(rows * dim);
      const dw0 = r.f32(dim);
      const dxN = new Float32Array(rows * dim);
      const dxJ = new Float32Array(rows * dim);
      const dwN = copy(dw0);
      const dwJ = copy(dw0);
      nb.rmsnormBackward(dy, x, w, rsJ, rows, dim, dxN, dwN);
      js.rmsnormBackward(dy, x, w, rsJ, rows, dim, dxJ, dwJ);
      expectClose(`rmsnormBackward dx ${rows}x${dim}`, dxN, dxJ);
      expectCloseNormwise(`rmsnormBackward dw ${rows}x${dim}`, dwN, dwJ);
    }
  });

  it('rope forward and inverse, also in place', () => {
    for (const [B, T, H, Dh] of [[2, 5, 3, 8], [1, 33, 4, 64], [3, 7, 2, 2]] as const) {
      const half = Dh / 2;
      const cos = new Float32Array(T * half);
      const sin = new Float32Array(T * half);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < half; i++) {
          const ang = (t + 3) * Math.pow(10000, (-2 * i) / Dh);
          cos[t * half + i] = Math.cos(ang);
          sin[t * half + i] = Math.sin(ang);
        }
      }
      const n = B * T * H * Dh;
      for (const inverse of [false, true]) {
        const x = r.f32(n);
        const on = new Float32Array(n);
        const oj = new Float32Array(n);
        nb.rope(x, cos, sin, B, T, H, Dh, inverse, on);
        js.rope(x, cos, sin, B, T, H, Dh, inverse, oj);
        expectClose(`rope B=${B} T=${T} H=${H} Dh=${Dh} inverse=${inverse}`, on, oj);
        const inPlace = copy(x);
        nb.rope(inPlace, cos, sin, B, T, H, Dh, inverse, inPlace);
        expectClose(`rope in place`, inPlace, oj);
      }
    }
  });

  it('attention forward and backward: GQA 1 and 2, causal and not, S > T, odd T, several tiles', () => {
    // [B, T, S, H, Hkv, Dh, causal]
    const cases: [number, number, number, number, number, number, boolean][] = [
      [2, 7, 7, 4, 4, 16, true],
      [2, 7, 7, 4, 4, 16, false],
      [1, 9, 13, 4, 2, 8, true],
      [2, 5, 11, 2, 1, 32, false],
      [1, 70, 70, 2, 1, 64, true],
      [1, 67, 300, 2, 2, 16, true],
      [1, 300, 300, 2, 1, 16, false],
      [2, 129, 129, 4, 2, 64, true],
    ];
    for (const [B, T, S, H, Hkv, Dh, causal] of cases) {
      const tag = `B=${B} T=${T} S=${S} H=${H} Hkv=${Hkv} Dh=${Dh} causal=${causal}`;
      const nq = B * T * H * Dh;
      const nkv = B * S * Hkv * Dh;
      const q = r.f32(nq, -1.5, 1.5);
      const k = r.f32(nkv, -1.5, 1.5);
      const v = r.f32(nkv);
      const scale = 1 / Math.sqrt(Dh);
      const outN = new Float32Array(nq);
      const outJ = new Float32Array(nq);
      const lseN = new Float32Array(B * H * T);
      const lseJ = new Float32Array(B * H * T);
      nb.attentionForward(q, k, v, B, T, S, H, Hkv, Dh, scale, causal, outN, lseN);
      js.attentionForward(q, k, v, B, T, S, H, Hkv, Dh, scale, causal, outJ, lseJ);
      // out is a P-weighted mean of v rows of both signs: judge it against the mean of |v|, the
      // same attention over |v| (the GEMM-style bound sum_s P_s |v_s| / sum_s P_s).
      const outAbs = new Float32Array(nq);
      js.attentionForward(q, k, v.map(Math.abs), B, T, S, H, Hkv, Dh, scale, causal, outAbs, new Float32Array(B * H * T));
      let worst = 0;
      for (let i = 0; i < nq; i++) worst = Math.max(worst, Math.abs(outN[i]! - outJ[i]!) / outAbs[i]!);
      expect(worst, `attentionForward out ${tag}`).toBeLessThanOrEqual(TOL);
      expectClose(`attentionForward lse ${tag}`, lseN, lseJ);
      const dout = r.f32(nq);
      const grads = (be: Backend): Float32Array[] => {
        const dq = new Float32Array(nq).fill(NaN);
        const dk = new Float32Array(nkv).fill(NaN);
        const dv = new Float32Array(nkv).fill(NaN);
        be.attentionBackward(q, k, v, outJ, lseJ, dout, B, T, S, H, Hkv, Dh, scale, causal, dq, dk, dv);
        return [dq, dk, dv];
      };
      const gn = grads(nb);
      const gj = grads(js);
      ['dq', 'dk', 'dv'].forEach((name, i) => expectCloseNormwise(`attentionBackward ${name} ${tag}`, gn[i]!, gj[i]!));
    }
  });

  it('swiglu forward and backward', () => {
    for (const n of [13, 50001]) {
      const g = r.f32(n, -6, 6);
      const u = r.f32(n, -2, 2);
      const on = new Float32Array(n);
      const oj = new Float32Array(n);
      nb.swigluForward(g, u, on, n);
      js.swigluForward(g, u, oj, n);
      expectClose(`swigluForward n=${n}`, on, oj);
      const dout = r.f32(n);
      const dgN = new Float32Array(n);
      const duN = new Float32Array(n);
      const dgJ = new Float32Array(n);
      const duJ = new Float32Array(n);
      nb.swigluBackward(g, u, dout, dgN, duN, n);
      js.swigluBackward(g, u, dout, dgJ, duJ, n);
      expectClose(`swigluBackward dg n=${n}`, dgN, dgJ);
      expectClose(`swigluBackward du n=${n}`, duN, duJ);
    }
  });

  it('softmax and log-softmax forward and backward (softmax also in place)', () => {
    for (const [rows, cols] of [[5, 17], [64, 255], [3, 2000], [512, 8]] as const) {
      const n = rows * cols;
      const x = r.f32(n, -8, 8);
      const dy = r.f32(n);
      const tag = `${rows}x${cols}`;
      const yN = new Float32Array(n);
      const yJ = new Float32Array(n);
      nb.softmaxForward(x, rows, cols, yN);
      js.softmaxForward(x, rows, cols, yJ);
      expectClose(`softmaxForward ${tag}`, yN, yJ);
      const inPlace = copy(x);
      nb.softmaxForward(inPlace, rows, cols, inPlace);
      expectClose(`softmaxForward in place ${tag}`, inPlace, yJ);
      const dxN = new Float32Array(n);
      const dxJ = new Float32Array(n);
      nb.softmaxBackward(yJ, dy, rows, cols, dxN);
      js.softmaxBackward(yJ, dy, rows, cols, dxJ);
      expectClose(`softmaxBackward ${tag}`, dxN, dxJ);
      const lN = new Float32Array(n);
      const lJ = new Float32Array(n);
      nb.logSoftmaxForward(x, rows, cols, lN);
      js.logSoftmaxForward(x, rows, cols, lJ);
      expectClose(`logSoftmaxForward ${tag}`, lN, lJ);
      nb.logSoftmaxBackward(lJ, dy, rows, cols, dxN);
      js.logSoftmaxBackward(lJ, dy, rows, cols, dxJ);
      expectClose(`logSoftmaxBackward ${tag}`, dxN, dxJ);
    }
  });

  it('cross-entropy forward and backward with ignore-index rows', () => {
    for (const [rows, V] of [[5, 17], [37, 2000], [512, 100]] as const) {
      const logits = r.f32(rows * V, -5, 5);
      const targets = r.ints(rows, V);
      for (let i = 0; i < rows; i += 4) targets[i] = -100;
      const lossN = new Float32Array(rows).fill(NaN);
      const lossJ = new Float32Array(rows);
      const lseN = new Float32Array(rows);
      const lseJ = new Float32Array(rows);
      nb.crossEntropyForward(logits, targets, rows, V, -100, lossN, lseN);
      js.crossEntropyForward(logits, targets, rows, V, -100, lossJ, lseJ);
      expectClose(`crossEntropyForward losses ${rows}x${V}`, lossN, lossJ);
      expectClose(`crossEntropyForward lse ${rows}x${V}`, lseN, lseJ);
      expect(lossN[0]).toBe(0);
      const dl = r.f32(rows, 0.1, 1);
      const dN = new Float32Array(rows * V).fill(NaN);
      const dJ = new Float32Array(rows * V);
      nb.crossEntropyBackward(logits, targets, lseJ, dl, rows, V, -100, dN);
      js.crossEntropyBackward(logits, targets, lseJ, dl, rows, V, -100, dJ);
      expectClose(`crossEntropyBackward ${rows}x${V}`, dN, dJ);
    }
  });

  it('gatherRows, scatterAddRows, scatterRows and its backward (duplicates, with and without weights), gatherRowDot', () => {
    for (const [srcRows, n, dim] of [[50, 80, 33], [8, 1024, 256], [3, 5, 1]] as const) {
      const src = r.f32(srcRows * dim);
      const idx = r.ints(n, srcRows);
      const on = new Float32Array(n * dim);
      const oj = new Float32Array(n * dim);
      nb.gatherRows(src, idx, n, dim, on);
      js.gatherRows(src, idx, n, dim, oj);
      expectClose(`gatherRows ${n}x${dim}`, on, oj);
      const rowsSrc = r.f32(n * dim);
      const w = r.f32(n, 0, 1);
      for (const weights of [w, null]) {
        const base = r.f32(srcRows * dim);
        const sn = copy(base);
        const sj = copy(base);
        nb.scatterAddRows(rowsSrc, idx, weights, n, dim, sn);
        js.scatterAddRows(rowsSrc, idx, weights, n, dim, sj);
        expectClose(`scatterAddRows ${n}x${dim} w=${weights ? 'yes' : 'null'}`, sn, sj);
      }
      for (const weights of [w, null]) {
        // the combine without a zeroing pass: bit for bit scatterAddRows onto zeros, rows nobody names are 0
        const garbage = (): Float32Array => r.f32(srcRows * dim, 5, 9);
        const sn = garbage();
        const sj = garbage();
        const zeroed = new Float32Array(srcRows * dim);
        nb.scatterRows(rowsSrc, idx, weights, n, dim, srcRows, sn);
        js.scatterRows(rowsSrc, idx, weights, n, dim, srcRows, sj);
        nb.scatterAddRows(rowsSrc, idx, weights, n, dim, zeroed);
        expect(Array.from(sn), `scatterRows ${n}x${dim} == scatterAddRows onto zeros`).toEqual(Array.from(zeroed));
        expectClose(`scatterRows ${n}x${dim} w=${weights ? 'yes' : 'null'}`, sn, sj);
      }
      const dn = new Float32Array(n);
      const dj = new Float32Array(n);
      nb.gatherRowDot(src, idx, rowsSrc, n, dim, dn);
      js.gatherRowDot(src, idx, rowsSrc, n, dim, dj);
      expectClose(`gatherRowDot ${n}x${dim}`, dn, dj);
      {
        // the combine's backward in one pass: bit for bit gatherRows * w and gatherRowDot, and the js reference
        const [gn, gj, gRef] = [new Float32Array(n * dim), new Float32Array(n * dim), new Float32Array(n * dim)];
        const [wn, wj] = [new Float32Array(n), new Float32Array(n)];
        nb.scatterRowsBackward(src, idx, w, rowsSrc, n, dim, srcRows, gn, wn);
        js.scatterRowsBackward(src, idx, w, rowsSrc, n, dim, srcRows, gj, wj);
        nb.gatherRows(src, idx, n, dim, gRef);
        nb.binary('mul', gRef, [n, dim], w, [n, 1], gRef, [n, dim]);
        expect(Array.from(gn), `scatterRowsBackward ${n}x${dim}: dsrc`).toEqual(Array.from(gRef));
        expect(Array.from(wn), `scatterRowsBackward ${n}x${dim}: dw`).toEqual(Array.from(dn));
        expectClose(`scatterRowsBackward ${n}x${dim} dsrc`, gn, gj);
        expectClose(`scatterRowsBackward ${n}x${dim} dw`, wn, wj);
        const only = new Float32Array(n);
        nb.scatterRowsBackward(src, idx, w, rowsSrc, n, dim, srcRows, null, only);
        expect(Array.from(only)).toEqual(Array.from(dn));
      }
    }
  });

  it('takeAlongRows and its backward (repeated columns accumulate)', () => {
    for (const [rows, cols, k] of [[9, 17, 3], [512, 8, 2], [4, 5, 5]] as const) {
      const x = r.f32(rows * cols);
      const idx = r.ints(rows * k, cols);
      const on = new Float32Array(rows * k);
      const oj = new Float32Array(rows * k);
      nb.takeAlongRows(x, idx, rows, cols, k, on);
      js.takeAlongRows(x, idx, rows, cols, k, oj);
      expectClose(`takeAlongRows ${rows}x${cols} k=${k}`, on, oj);
      const dy = r.f32(rows * k);
      const base = r.f32(rows * cols);
      const dn = copy(base);
      const dj = copy(base);
      nb.takeAlongRowsBackward(dy, idx, rows, cols, k, dn);
      js.takeAlongRowsBackward(dy, idx, rows, cols, k, dj);
      expectClose(`takeAlongRowsBackward ${rows}x${cols} k=${k}`, dn, dj);
    }
  });

  it('routeTopK and its backward (top-k, null rows, ties between copied rows, a NaN row), one-line errors', () => {
    for (const [T, R, N, k] of [[9, 6, 4, 3], [512, 16, 8, 3], [300, 8, 8, 2], [64, 80, 64, 8], [5, 4, 4, 4]] as const) {
      const logits = r.f32(T * R, -2, 2);
      // every third token's rows past N copy its first rows (the add-null-experts surgery's init): exact ties
      for (let t = 0; t < T; t += 3) for (let c = N; c < R; c++) logits[t * R + c] = logits[t * R + (c - N) % N]!;
      for (const normalize of [true, false]) {
        for (const withNull of [true, false]) {
          const run = (b: Backend) => {
            const o = {
              probs: new Float32Array(T * R), slotRows: new Int32Array(T * k), slotPair: new Int32Array(T * k), top1: new Int32Array(T),
              selected: new Uint8Array(T * R), offsets: new Int32Array(N + 1), tokens: new Int32Array(T * k), gates: new Float32Array(T * k),
              nullSums: withNull ? new Float32Array(T) : null, P: 0,
            };
            o.P = b.routeTopK(logits, T, R, N, k, normalize, o.probs, o.slotRows, o.slotPair, o.top1, o.selected, o.offsets, o.tokens, o.gates, o.nullSums);
            return o;
          };
          const on = run(nb);
          const oj = run(js);
          const what = `routeTopK T=${T} R=${R} N=${N} k=${k} normalize=${normalize}`;
          expect(on.P, what).toBe(oj.P);
          for (const key of ['slotRows', 'slotPair', 'top1', 'selected', 'offsets', 'tokens'] as const) {
            expect(Array.from(on[key]), `${what}: ${key}`).toEqual(Array.from(oj[key]));
          }
          expectClose(`${what}: probs`, on.probs, oj.probs);
          expectClose(`${what}: gates`, on.gates.subarray(0, on.P), oj.gates.subarray(0, oj.P));
          if (withNull) expectClose(`${what}: nullSums`, on.nullSums!, oj.nullSums!);
          const dprobs = r.f32(T * R);
          const dgates = r.f32(on.P);
          const dnull = r.f32(T);
          for (const [dp, dg, dn] of [[dprobs, dgates, dnull], [null, dgates, null], [dprobs, null, null], [null, null, dnull]] as const) {
            // both from the native forward's outputs (the probabilities differ in the last bits, and dlogits cancels)
            const back = (b: Backend, o: typeof on): Float32Array => {
              const d = r.f32(T * R); // overwritten
              b.routeTopKBackward(o.probs, o.slotRows, o.slotPair, o.gates.subarray(0, o.P), T, R, N, k, normalize, dp, dg, dn, d);
              return d;
            };
            expectClose(`${what}: dlogits (dprobs ${dp ? 'yes' : 'null'}, dgates ${dg ? 'yes' : 'null'}, dnull ${dn ? 'yes' : 'null'})`, back(nb, on), back(js, on));
          }
        }
      }
    }
    {
      // a token with a NaN logit takes the insertion path (the branch-free one assumes none): the same choices as js
      const [T, R, N, k] = [3, 6, 4, 3];
      const logits = r.f32(T * R, -2, 2);
      logits[R + 2] = NaN;
      const choices = (b: Backend) => {
        const sr = new Int32Array(T * k);
        const top1 = new Int32Array(T);
        const sel = new Uint8Array(T * R);
        const f = new Float32Array(T * R + T * k);
        b.routeTopK(logits, T, R, N, k, true, f.subarray(0, T * R), sr, new Int32Array(T * k), top1, sel, new Int32Array(N + 1), new Int32Array(T * k), f.subarray(T * R), null);
        return [Array.from(sr), Array.from(top1), Array.from(sel)];
      };
      expect(choices(nb)).toEqual(choices(js));
    }
    const a = new Float32Array(8);
    const i = new Int32Array(8);
    expect(() => nb.routeTopK(a, 2, 4, 5, 2, true, a, i, i, i, new Uint8Array(8), i, i, a, null)).toThrow(
      /routeTopK: expected N <= R and 1 <= k <= R, got N = 5, R = 4, k = 2/);
    expect(() => nb.routeTopKBackward(a, Int32Array.from([0, 1, 2, 3]), Int32Array.from([0, -1, 1, 2]), new Float32Array(2), 2, 4, 2, 2, true, null, null, null, a)).toThrow(
      /routeTopKBackward: slotPair\[1\] = -1 does not match slot row 1 \(N = 2, P = 2\)/);
  });

  it('adamw over small and threaded sizes, several steps', () => {
    for (const n of [1000, 100003]) {
      const p0 = r.f32(n);
      const pn = copy(p0);
      const pj = copy(p0);
      const mn = new Float32Array(n);
      const mj = new Float32Array(n);
      const vn = new Float32Array(n);
      const vj = new Float32Array(n);
      for (let t = 1; t <= 3; t++) {
        const g = r.f32(n);
        const bc1 = 1 - Math.pow(0.9, t);
        const bc2 = 1 - Math.pow(0.999, t);
        nb.adamw(pn, g, mn, vn, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, bc1, bc2, 0.5);
        js.adamw(pj, g, mj, vj, n, 1e-3, 0.9, 0.999, 1e-8, 0.1, bc1, bc2, 0.5);
      }
      expectClose(`adamw p n=${n}`, pn, pj);
      expectClose(`adamw m n=${n}`, mn, mj);
      expectClose(`adamw v n=${n}`, vn, vj);
    }
  });
});
