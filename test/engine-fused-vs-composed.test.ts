/**
 * Every fused kernel against the composition of elementary reference ops: the fused op on the
 * active backend in float32 (native when built) vs the same math composed from simple ops on the
 * js backend in float64 — values and gradients. This catches a fused kernel (and its hand-written
 * backward) that drifts from the math it stands for, on the backend that actually runs.
 */
import { describe, expect, it } from 'vitest';
import { backward, getBackend, ops, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';

type Fn = (...xs: Tensor[]) => Tensor;

function randData(n: number, rng: Rng, lo?: number, hi?: number): number[] {
  return Array.from({ length: n }, () => (lo !== undefined ? lo + (hi! - lo) * rng.next() : rng.normal()));
}

/** Values and input gradients of sum(f(xs) * R) for a fixed random R. */
function evaluate(f: Fn, data: number[][], shapes: number[][], dtype: 'float32' | 'float64', seed: number): { y: number[]; grads: number[][] } {
  const xs = data.map((d, i) => new Tensor(dtype === 'float32' ? Float32Array.from(d) : Float64Array.from(d), shapes[i]!, true));
  zeroGrad(xs);
  const y = withScope(() => {
    const out = f(...xs);
    const rng = new Rng(seed);
    const r = Array.from({ length: out.size }, () => rng.normal());
    const proj = new Tensor(dtype === 'float32' ? Float32Array.from(r) : Float64Array.from(r), out.shape);
    backward(ops.sum(ops.mul(out, proj)));
    return out.toArray();
  });
  return { y, grads: xs.map((x) => (x.gradValid && x.grad ? x.grad.toArray() : new Array<number>(x.size).fill(0))) };
}

function relErr(a: number[], b: number[]): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / Math.max(s, 1e-12);
}

function compare(name: string, fused: Fn, composed: Fn, data: number[][], shapes: number[][], tol = 2e-5): void {
  const a = evaluate(fused, data, shapes, 'float32', 11);
  const b = evaluate(composed, data, shapes, 'float64', 11);
  expect(relErr(a.y, b.y), `${name}: values`).toBeLessThan(tol);
  a.grads.forEach((g, i) => expect(relErr(g, b.grads[i]!), `${name}: gradient of input ${i}`).toBeLessThan(tol));
}

const rsqrtComposed = (x: Tensor): Tensor => ops.div(1, ops.sqrt(x));

describe(`fused kernels (${getBackend().name}, float32) == composed reference ops (js, float64)`, () => {
  const rng = new Rng(2024);

  it('linear == matmul + bias', () => {
    compare('linear', (x, w, b) => ops.linear(x!, w!, b!), (x, w, b) => ops.add(ops.matmul(x!, w!, false, true), b!),
      [randData(17 * 33, rng), randData(9 * 33, rng), randData(9, rng)], [[17, 33], [9, 33], [9]]);
  });

  it('loraAdd == y + s * (x Aᵀ) Bᵀ', () => {
    compare('loraAdd', (y, x, a, b) => ops.loraAdd(y!, x!, a!, b!, 2),
      (y, x, a, b) => ops.add(y!, ops.scale(ops.matmul(ops.matmul(x!, a!, false, true), b!, false, true), 2)),
      [randData(9 * 12, rng), randData(9 * 20, rng), randData(8 * 20, rng), randData(12 * 8, rng)], [[9, 12], [9, 20], [8, 20], [12, 8]]);
  });

  it('groupedLoraAdd == y + s * groupedLinear(groupedLinear(x, A), B), copy and in place', () => {
    const off = Int32Array.from([0, 4, 4, 9, 11]);
    const r = 4;
    const [P, K, N] = [11, 20, 12];
    const data = [randData(P * N, rng), randData(P * K, rng), ...[0, 1, 2, 3].map(() => randData(r * K, rng)), ...[0, 1, 2, 3].map(() => randData(N * r, rng))];
    const shapes = [[P, N], [P, K], ...[0, 1, 2, 3].map(() => [r, K]), ...[0, 1, 2, 3].map(() => [N, r])];
    const composed: Fn = (y, x, ...w) => ops.add(y!, ops.scale(ops.groupedLinear(ops.groupedLinear(x!, w.slice(0, 4), off), w.slice(4), off), 2));
    compare('groupedLoraAdd', (y, x, ...w) => ops.groupedLoraAdd(y!, x!, w.slice(0, 4), w.slice(4), off, 2), composed, data, shapes);
    compare('groupedLoraAdd in place', (y, x, ...w) => ops.groupedLoraAdd(ops.scale(y!, 1), x!, w.slice(0, 4), w.slice(4), off, 2, { inPlace: true }), composed, data, shapes);
  });

  it('rmsnorm == x * rsqrt(mean(x^2) + eps) * w', () => {
    compare('rmsnorm', (x, w) => ops.rmsnorm(x!, w!, 1e-5),
      (x, w) => ops.mul(ops.mul(x!, rsqrtComposed(ops.add(ops.mean(ops.square(x!), -1, true), 1e-5))), w!),
      [randData(13 * 64, rng), randData(64, rng, 0.5, 1.5)], [[13, 64], [64]]);
  });

  it('swiglu == g * sigmoid(g) * u', () => {
    compare('swiglu', (g, u) => ops.swiglu(g!, u!), (g, u) => ops.mul(ops.mul(g!, ops.sigmoid(g!)), u!),
      [randData(7 * 96, rng), randData(7 * 96, rng)], [[7, 96], [7, 96]]);
  });

  it('softmax == exp(x - max) / sum, logSoftmax == x - log(sum(exp(x)))', () => {
    const sm = (x: Tensor): Tensor => { const e = ops.exp(x); return ops.div(e, ops.sum(e, -1, true)); };
    compare('softmax', (x) => ops.softmax(x!), (x) => sm(x!), [randData(9 * 16, rng)], [[9, 16]]);
    compare('logSoftmax', (x) => ops.logSoftmax(x!), (x) => ops.sub(x!, ops.log(ops.sum(ops.exp(x!), -1, true))), [randData(9 * 16, rng)], [[9, 16]]);
  });

  it('crossEntropy (ignore-index) == mean of -logSoftmax at the targets', () => {
    const targets = [3, -100, 0, 15, 7, -100, 2, 9];
    const idx = new Tensor(Int32Array.from(targets.map((t) => (t < 0 ? 0 : t))), [8, 1]);
    const keep: number[] = targets.map((t) => (t < 0 ? 0 : 1));
    compare('crossEntropy', (x) => ops.crossEntropy(x!, new Tensor(Int32Array.from(targets), [8])),
      (x) => {
        const picked = ops.reshape(ops.takeAlongRows(ops.logSoftmax(x!), idx), [8]);
        const mask = new Tensor(Float64Array.from(keep), [8]);
        return ops.div(ops.neg(ops.sum(ops.mul(picked, mask))), keep.reduce((a, b) => a + b, 0));
      }, [randData(8 * 16, rng, -3, 3)], [[8, 16]]);
  });

  it('rope == x cos + rotate_half(x) sin', () => {
    const [B, T, H, Dh] = [1, 5, 2, 8];
    const theta = 10000;
    const half = Dh / 2;
    const cos: number[] = [];
    const sin: number[] = [];
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let i = 0; i < Dh; i++) {
      const ang = t * Math.pow(theta, -(2 * (i % half)) / Dh);
      cos.push(Math.cos(ang));
      sin.push(Math.sin(ang));
    }
    compare('rope', (x) => ops.rope(x!, theta, 0), (x) => {
      const rot = ops.concat([ops.neg(ops.slice(x!, 3, half, Dh)), ops.slice(x!, 3, 0, half)], 3);
      return ops.add(ops.mul(x!, new Tensor(Float64Array.from(cos), [B, T, H, Dh])), ops.mul(rot, new Tensor(Float64Array.from(sin), [B, T, H, Dh])));
    }, [randData(B * T * H * Dh, rng)], [[B, T, H, Dh]], 5e-5);
  });

  it('attention (GQA 2, causal) == softmax(q k^T / sqrt(d) + mask) v per head', () => {
    const [T, H, Hkv, Dh] = [6, 4, 2, 8];
    const composed = (q: Tensor, k: Tensor, v: Tensor): Tensor => {
      const mask = new Float64Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
      const maskT = new Tensor(mask, [T, T]);
      const heads: Tensor[] = [];
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / (H / Hkv));
        const qh = ops.reshape(ops.slice(q, 2, h, h + 1), [T, Dh]);
        const kk = ops.reshape(ops.slice(k, 2, kh, kh + 1), [T, Dh]);
        const vv = ops.reshape(ops.slice(v, 2, kh, kh + 1), [T, Dh]);
        const s = ops.add(ops.scale(ops.matmul(qh, kk, false, true), 1 / Math.sqrt(Dh)), maskT);
        const e = ops.exp(ops.sub(s, ops.maxAlong(s, -1, true)));
        heads.push(ops.reshape(ops.matmul(ops.div(e, ops.sum(e, -1, true)), vv), [1, T, 1, Dh]));
      }
      return ops.concat(heads, 2);
    };
    compare('attention', (q, k, v) => ops.attention(q!, k!, v!), composed,
      [randData(T * H * Dh, rng), randData(T * Hkv * Dh, rng), randData(T * Hkv * Dh, rng)], [[1, T, H, Dh], [1, T, Hkv, Dh], [1, T, Hkv, Dh]]);
  });

  it('gatherRows / weighted scatterAddRows (MoE dispatch and combine) == one-hot matmuls', () => {
    const idx = Int32Array.from([2, 0, 2, 4, 1]);
    const onehot = new Float64Array(5 * 6);
    idx.forEach((r, i) => { onehot[i * 6 + r] = 1; });
    const P = new Tensor(onehot, [5, 6]);
    compare('gatherRows', (x) => ops.gatherRows(x!, idx), (x) => ops.matmul(P, x!), [randData(6 * 7, rng)], [[6, 7]]);
    compare('scatterAddRows', (s, w) => ops.scatterAddRows(s!, idx, 6, w!),
      (s, w) => ops.matmul(P, ops.mul(s!, ops.reshape(w!, [5, 1])), true, false), [randData(5 * 7, rng), randData(5, rng)], [[5, 7], [5]]);
  });
});
