/**
 * The fused top-k router step (ops.routeTopK: one kernel for softmax, top-k, gates and the pairs
 * grouped by expert) against the chain of ops and buildRouting it replaced, kept here as the
 * reference: for top-k (renormalised or not) and AdaMoE null experts (zero and identity mapping),
 * on each backend, the routing (pairs, gates, probabilities, selections, top-1, statistics) is
 * bit for bit the same, and the gradient reaching the logits (through gates, probabilities and
 * identity weights) agrees to float rounding. Ties are forced (null rows copied from true rows, as
 * the add-null-experts surgery does; probabilities that underflow to 0).
 */
import { describe, expect, it } from 'vitest';
import { buildRouting } from '../src/routers/build-routing.js';
import { NullExpertsRouter, type NullMapping } from '../src/routers/null-experts.js';
import type { Router, RouterLayout, Routing } from '../src/routers/router.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { backward, nativeAvailable, ops, Rng, setBackend, Tensor, topkRows, withScope, zeroGrad } from '../src/tensor/index.js';

/** The top-k router as a chain of ops (before the fused op). */
function composedTopK(logits: Tensor, layout: RouterLayout, k: number, normalize: boolean): Routing {
  const T = logits.shape[0]!;
  const probs = ops.softmax(logits);
  const { indices, k: kk } = topkRows(probs.f, T, layout.rows, k);
  const picked = ops.takeAlongRows(probs, new Tensor(indices, [T, kk]));
  const gates = normalize ? ops.div(picked, ops.sum(picked, 1, true)) : picked;
  return buildRouting({ logits, probs, layout, kmax: kk, slotRows: indices, slotGates: gates });
}

/** AdaMoE null experts as a chain of ops (before the fused op). */
function composedNull(logits: Tensor, layout: RouterLayout, k: number, mapping: NullMapping): Routing {
  const T = logits.shape[0]!;
  const N = layout.numExperts;
  const probs = ops.softmax(logits);
  const { indices, k: kk } = topkRows(probs.f, T, layout.rows, k);
  const F = probs.dtype === 'float64' ? Float64Array : Float32Array;
  const trueMask = new F(T * kk);
  const noTrue = new F(T);
  for (let t = 0; t < T; t++) {
    let any = false;
    for (let j = 0; j < kk; j++) {
      if (indices[t * kk + j]! < N) {
        trueMask[t * kk + j] = 1;
        any = true;
      }
    }
    if (!any) noTrue[t] = 1;
  }
  const picked = ops.takeAlongRows(probs, new Tensor(indices, [T, kk]));
  const truePicked = ops.mul(picked, new Tensor(trueMask, [T, kk]));
  const denom = ops.add(ops.sum(truePicked, 1, true), new Tensor(noTrue, [T, 1]));
  let slotGates = ops.div(truePicked, denom);
  if (mapping === 'identity') {
    const nullMask = new F(T * kk);
    for (let i = 0; i < T * kk; i++) nullMask[i] = 1 - trueMask[i]!;
    slotGates = ops.add(slotGates, ops.mul(picked, new Tensor(nullMask, [T, kk])));
  }
  return buildRouting({ logits, probs, layout, kmax: kk, slotRows: indices, slotGates, identityNulls: mapping === 'identity' });
}

interface Case {
  name: string;
  router: Router;
  N: number;
  composed: (logits: Tensor, layout: RouterLayout) => Routing;
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const [k, N] of [[1, 4], [2, 8], [3, 6], [8, 4], [8, 64]] as const) {
    for (const normalize of [true, false]) {
      out.push({ name: `top-k k=${k} N=${N}${normalize ? '' : ' raw'}`, router: new TopKRouter(k, normalize), N,
        composed: (l, lay) => composedTopK(l, lay, k, normalize) });
    }
  }
  for (const [k, N, m] of [[1, 4, 2], [3, 8, 8], [2, 4, 4], [6, 4, 3], [4, 64, 16]] as const) {
    for (const mapping of ['zero', 'identity'] as const) {
      out.push({ name: `null-experts k=${k} N=${N} m=${m} ${mapping}`, router: new NullExpertsRouter(k, m, mapping), N,
        composed: (l, lay) => composedNull(l, lay, k, mapping) });
    }
  }
  return out;
}

/** Router logits [T, R] with forced ties: the last rows copy the first ones (surgery's init), and some huge gaps (p underflows to 0). */
function logitsFor(T: number, R: number, N: number, rng: Rng, dtype: 'float32' | 'float64'): Float32Array | Float64Array {
  const a = dtype === 'float64' ? new Float64Array(T * R) : new Float32Array(T * R);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < R; r++) a[t * R + r] = rng.normal() * 2;
    if (t % 3 === 0) for (let r = N; r < R; r++) a[t * R + r] = a[t * R + ((r - N) % N)]!;
    // a true row far above the rest (the others' p underflow to 0; on a null row, a chosen true row
    // with p = 0 would make both paths' gate 0 / 0)
    if (t % 7 === 1) a[t * R + (t % N)] = 200;
    if (t % 11 === 2) for (let r = 0; r < R; r++) a[t * R + r] = 0.5;
  }
  return a;
}

function viewOf(r: Routing) {
  return {
    tokens: Array.from(r.tokens), offsets: Array.from(r.expertOffsets), gates: Array.from(r.gates.f),
    probs: Array.from(r.probs.f), selected: Array.from(r.selected), top1: Array.from(r.top1),
    identity: r.identityWeights ? Array.from(r.identityWeights.f) : null,
    stats: { ...r.stats, tokensPerExpert: Array.from(r.stats.tokensPerExpert) },
  };
}

/** Routes, then backpropagates sum(gates * a) + sum(probs * b) + sum(identity * c); returns the routing and dlogits. */
function routeAndGrad(route: (l: Tensor) => Routing, data: Float32Array | Float64Array, shape: [number, number], seed: number) {
  const logits = new Tensor(data.slice(), shape, true);
  zeroGrad([logits]);
  return withScope(() => {
    const r = route(logits);
    const view = viewOf(r);
    const rng = new Rng(seed);
    const proj = (n: number): Tensor => {
      const a = data instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.normal();
      return new Tensor(a, [n]);
    };
    let loss = ops.sum(ops.mul(ops.reshape(r.probs, [r.probs.size]), proj(r.probs.size)));
    if (r.gates.size > 0) loss = ops.add(loss, ops.sum(ops.mul(r.gates, proj(r.gates.size))));
    if (r.identityWeights) loss = ops.add(loss, ops.sum(ops.mul(r.identityWeights, proj(r.identityWeights.size))));
    backward(loss);
    return { view, grad: Array.from(logits.grad!.data) };
  });
}

function maxRelDiff(a: number[], b: number[]): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

const backends = nativeAvailable() ? (['native', 'js'] as const) : (['js'] as const);
if (!nativeAvailable()) console.warn('routers-fused-top-k.test: the native addon is not built; the js backend only');

describe('fused top-k routing == softmax + top-k + gate ops + buildRouting', () => {
  for (const be of backends) {
    for (const dtype of be === 'js' ? (['float32', 'float64'] as const) : (['float32'] as const)) {
      it(`${be} backend, ${dtype}: every case bit for bit, gradients to rounding`, () => {
        setBackend(be);
        try {
          const rng = new Rng(17);
          for (const c of cases()) {
            const layout = c.router.layoutFor(c.N);
            for (const T of [1, 7, 300]) {
              const data = logitsFor(T, layout.rows, c.N, rng, dtype);
              const ctx = { training: true, rng: new Rng(0), layer: 0 };
              const fused = routeAndGrad((l) => c.router.route(l, c.N, ctx), data, [T, layout.rows], 5);
              const ref = routeAndGrad((l) => c.composed(l, layout), data, [T, layout.rows], 5);
              expect(fused.view, `${c.name} T=${T}`).toEqual(ref.view);
              expect(maxRelDiff(fused.grad, ref.grad), `${c.name} T=${T}: dlogits`).toBeLessThan(dtype === 'float64' ? 1e-12 : 2e-6);
            }
          }
        } finally {
          setBackend('auto');
        }
      });
    }
  }

  it('the fused op reports the pairs of a hand-worked batch (null rows tie their true copies and lose)', () => {
    setBackend('js');
    try {
      // N = 2 true + 2 null rows; token 0: rows 2 and 0 tie (null copy of 0), token 1: only nulls in its top-2
      const logits = new Tensor(Float64Array.from([Math.log(4), Math.log(1), Math.log(4), Math.log(1), 0, 0, Math.log(3), Math.log(3)]), [2, 4]);
      const r = ops.routeTopK(logits, { trueColumns: 2, k: 2, normalize: true, nullSums: true });
      expect(Array.from(r.slotRows)).toEqual([0, 2, 2, 3]);
      expect(Array.from(r.offsets)).toEqual([0, 1, 1]);
      expect(Array.from(r.tokens)).toEqual([0]);
      expect(Array.from(r.gates.f)).toEqual([1]);
      expect(Array.from(r.nullSums!.f).map((v) => Math.round(v * 1e12) / 1e12)).toEqual([0.4, 0.75]);
      expect(Array.from(r.top1)).toEqual([0, 2]);
    } finally {
      setBackend('auto');
    }
  });

  it('one clear error for bad input', () => {
    const l = Tensor.zeros([2, 4]);
    expect(() => ops.routeTopK(l, { trueColumns: 5, k: 2, normalize: true })).toThrow(/routeTopK: trueColumns 5 must be an integer in \[0, 4\]/);
    expect(() => ops.routeTopK(Tensor.zeros([8]), { trueColumns: 2, k: 2, normalize: true })).toThrow(/routeTopK: logits have shape \[8\], expected \[tokens, rows\]/);
    expect(() => ops.routeTopK(l, { trueColumns: 2, k: 0, normalize: true })).toThrow(/routeTopK: k must be a positive integer/);
  });
});
