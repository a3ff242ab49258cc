/**
 * NF4 blockwise quantisation: code book round trips, nibble order, double quantisation of the
 * scales, and the mean absolute error on Gaussian weights against the analytic NF4 error.
 *
 * The analytic error is computed by NUMERICAL INTEGRATION (no Monte Carlo): for a block of B iid
 * N(0, 1) values, an element x is scaled by m = max(|x|, M') where M' is the absmax of the other
 * B - 1 elements (density (B-1) (2Φ(m)-1)^(B-2) 2φ(m)). When |x| >= M' the element is the block
 * maximum and is stored exactly (code ±1), else its error is |x - m q(x / m)| with q the nearest
 * NF4 value. So E|e| = ∫ f_M'(m) ∫_{|x|<m} φ(x) |x - m q(x/m)| dx dm, integrated on fine midpoint
 * grids below with a quantiser written here independently of src/quant.
 */
import { describe, expect, it } from 'vitest';
import {
  DYNAMIC_CODE, NF4_CODE, decodeScales, dequantizeNf4, dequantizeRange, nf4CodeAt, nf4Scales, nf4StorageBytes, quantizeNf4,
} from '../src/quant/index.js';
import { Rng } from '../src/tensor/index.js';

const QLORA_NF4 = [
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1,
];

/** Standard normal density and CDF (erf by Abramowitz-Stegun 7.1.26 is too coarse: use a series). */
function phi(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}
function Phi(x: number): number {
  // W. J. Cody-style: integrate the density with Simpson on [0, |x|] (accurate to ~1e-12 here)
  const a = Math.abs(x);
  const n = 200;
  const h = a / n;
  let s = phi(0) + phi(a);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * phi(i * h);
  const half = (s * h) / 3;
  return x >= 0 ? 0.5 + half : 0.5 - half;
}
/** Independent nearest-value NF4 quantiser of a normalised value. */
function nearestNf4(y: number): number {
  let best = QLORA_NF4[0]!;
  for (const c of QLORA_NF4) if (Math.abs(y - c) < Math.abs(y - best)) best = c;
  return best;
}

function analyticNf4Mae(B: number): number {
  const mSteps = 1200;
  const mMax = 6.5;
  const hm = mMax / mSteps;
  let total = 0;
  for (let i = 0; i < mSteps; i++) {
    const m = (i + 0.5) * hm;
    const cdf = 2 * Phi(m) - 1;
    const density = (B - 1) * Math.pow(cdf, B - 2) * 2 * phi(m);
    if (density < 1e-14) continue;
    // inner: ∫_{-m}^{m} φ(x) |x - m q(x/m)| dx (NF4 is asymmetric: 7 negative, 8 positive values)
    const xSteps = 1200;
    const hx = (2 * m) / xSteps;
    let inner = 0;
    for (let j = 0; j < xSteps; j++) {
      const x = -m + (j + 0.5) * hx;
      inner += phi(x) * Math.abs(x - m * nearestNf4(x / m));
    }
    total += density * inner * hx * hm;
  }
  return total;
}

describe('NF4 code book and packing', () => {
  it('uses the QLoRA code book, float32, ascending, with an exact 0', () => {
    expect(Array.from(NF4_CODE)).toEqual(QLORA_NF4.map(Math.fround));
    expect(NF4_CODE[7]).toBe(0);
  });

  it('every code book value round-trips exactly (plain and double-quantised scales)', () => {
    const scales = [1, 0.037, 2.5, 1e-3].map(Math.fround);
    const vals = new Float32Array(scales.length * 64);
    scales.forEach((s, b) => {
      for (let j = 0; j < 64; j++) vals[b * 64 + j] = Math.fround(NF4_CODE[j % 16]! * s);
    });
    const q = quantizeNf4(vals, [scales.length, 64], { doubleQuant: false });
    expect(Array.from(dequantizeNf4(q))).toEqual(Array.from(vals));
    for (let i = 0; i < 64; i++) expect(nf4CodeAt(q, i)).toBe(i % 16);
    // double quantisation: equal block scales survive exactly (the mean offset carries them)
    const same = new Float32Array(5 * 64);
    for (let i = 0; i < same.length; i++) same[i] = Math.fround(NF4_CODE[i % 16]! * 0.75);
    const qd = quantizeNf4(same, [5, 64], { doubleQuant: true });
    expect(qd.nested).not.toBeNull();
    expect(Array.from(dequantizeNf4(qd))).toEqual(Array.from(same));
  });

  it('packs element 2i in the high nibble and 2i+1 in the low nibble (bitsandbytes order)', () => {
    const v = Float32Array.from([-1, 1, 0, 0.5626170039176941, 0.0795802995562553]);
    const q = quantizeNf4(v, [1, 5], { doubleQuant: false });
    expect(q.codes.length).toBe(3);
    expect(q.codes[0]).toBe((0 << 4) | 15);
    expect(q.codes[1]).toBe((7 << 4) | 13);
    expect(q.codes[2]).toBe(8 << 4);
  });

  it('rounds to the nearest code; an exact midpoint goes to the lower code; a zero block stays zero', () => {
    const mid = Math.fround((NF4_CODE[9]! + NF4_CODE[10]!) / 2);
    const v = Float32Array.from([1, mid, Math.fround(mid + 1e-6), 0.3]);
    const q = quantizeNf4(v, [1, 4], { doubleQuant: false, blockSize: 4 });
    expect([0, 1, 2, 3].map((i) => nf4CodeAt(q, i))).toEqual([15, 9, 10, 11]);
    const z = quantizeNf4(new Float32Array(70), [70], { doubleQuant: true });
    expect(Array.from(dequantizeNf4(z)).every((x) => x === 0)).toBe(true);
  });

  it('a range dequantises to the same values as the whole tensor (blocks straddling rows, odd offsets)', () => {
    const rng = new Rng(3);
    const n = 37 * 41;
    const w = new Float32Array(n).map(() => rng.normal());
    const q = quantizeNf4(w, [37, 41]);
    const full = dequantizeNf4(q);
    for (const [a, b] of [[0, n], [1, 2], [63, 130], [41 * 5 + 3, 41 * 9 + 1], [n - 3, n]] as const) {
      const out = new Float32Array(b - a);
      dequantizeRange(q, a, b, out);
      expect(Array.from(out)).toEqual(Array.from(full.subarray(a, b)));
    }
  });
});

describe('double quantisation of the scales (8-bit dynamic map, blocks of 256)', () => {
  it('builds bitsandbytes\' signed dynamic map: 256 sorted values, 0 and 1, symmetric steps', () => {
    expect(DYNAMIC_CODE.length).toBe(256);
    for (let i = 1; i < 256; i++) expect(DYNAMIC_CODE[i]!).toBeGreaterThan(DYNAMIC_CODE[i - 1]!);
    expect(DYNAMIC_CODE[255]).toBe(1);
    expect(DYNAMIC_CODE[127]).toBe(0);
    expect(DYNAMIC_CODE[0]).toBeCloseTo(-0.99296875, 6); // -(0.9859375 + 1) / 2 : top-decade midpoint
    expect(DYNAMIC_CODE[128]).toBeCloseTo(5.5e-7, 12); // 10^-6 * (0.1 + 1) / 2
  });

  it('stores scales in 8 bits with one float32 absmax per 256 blocks, and recovers them to < 1% of the spread', () => {
    const rng = new Rng(9);
    const rows = 600;
    const w = new Float32Array(rows * 64).map(() => rng.normal() * (0.5 + rng.next()));
    const plain = quantizeNf4(w, [rows, 64], { doubleQuant: false });
    const dq = quantizeNf4(w, [rows, 64], { doubleQuant: true });
    expect(dq.nested!.qabsmax.length).toBe(600);
    expect(dq.nested!.nestedAbsmax.length).toBe(3);
    const exact = plain.absmax!;
    const got = nf4Scales(dq);
    let mean = 0;
    for (const v of exact) mean += v / exact.length;
    expect(dq.nested!.offset).toBeCloseTo(mean, 5);
    let spread = 0;
    for (const v of exact) spread = Math.max(spread, Math.abs(v - mean));
    let worst = 0;
    for (let b = 0; b < rows; b++) worst = Math.max(worst, Math.abs(got[b]! - exact[b]!));
    expect(worst).toBeLessThan(0.01 * spread);
    expect(worst).toBeGreaterThan(0); // it really is compressed
    // the 4-bit codes are chosen with the exact scales: identical with and without double quant
    expect(Array.from(dq.codes)).toEqual(Array.from(plain.codes));
    const one = new Float32Array(1);
    decodeScales(dq, 17, 18, one);
    expect(one[0]).toBe(got[17]);
  });

  it('costs 4.127 bits per parameter in memory (0.516 bytes; <= 0.53)', () => {
    const q = quantizeNf4(new Float32Array(4096 * 64).fill(0.5), [4096, 64]);
    const bytesPerParam = nf4StorageBytes(q) / q.numel;
    expect(bytesPerParam).toBeCloseTo(0.5 + 1 / 64 + 4 / (64 * 256), 4);
    expect(bytesPerParam).toBeLessThanOrEqual(0.53);
  });
});

describe('quantisation error on Gaussian weights', () => {
  const analytic = analyticNf4Mae(64);
  const rng = new Rng(2024);
  const n = 64 * 8192;
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = rng.normal();
  const mae = (doubleQuant: boolean): number => {
    const d = dequantizeNf4(quantizeNf4(w, [8192, 64], { doubleQuant }));
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.abs(d[i]! - w[i]!);
    return s / n;
  };

  it('the analytic NF4 error of a 64-block of N(0,1) is about 0.073', () => {
    expect(analytic).toBeGreaterThan(0.06);
    expect(analytic).toBeLessThan(0.085);
  });

  it('measured mean absolute error is within 10% of the analytic one (within 1% in practice)', () => {
    const plain = mae(false);
    const dq = mae(true);
    expect(Math.abs(plain / analytic - 1)).toBeLessThan(0.1);
    expect(Math.abs(dq / analytic - 1)).toBeLessThan(0.1);
    expect(Math.abs(plain / analytic - 1)).toBeLessThan(0.01);
    expect(dq).toBeGreaterThanOrEqual(plain * 0.999);
  });
});
