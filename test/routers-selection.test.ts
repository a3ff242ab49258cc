/**
 * Every router on a small hand-worked batch. The expected experts and gates are written out from
 * each paper's rule, not taken from our code: probabilities are dyadic (exactLogits) so that
 * cumulative sums equal to p or t are exact.
 */
import { describe, expect, it } from 'vitest';
import { expertCapacity } from '../src/routers/capacity.js';
import { ExpertChoiceRouter } from '../src/routers/expert-choice.js';
import { NullExpertsRouter } from '../src/routers/null-experts.js';
import { RandomDropRouter } from '../src/routers/random-drop.js';
import type { RouteContext, Router } from '../src/routers/router.js';
import { TernaryRouter } from '../src/routers/ternary.js';
import { ThresholdRouter } from '../src/routers/threshold.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { TopPRouter } from '../src/routers/top-p.js';
import { Rng, Tensor } from '../src/tensor/index.js';
import { exactLogits } from './helpers/exact-logits.js';
import { expectPairs, selectedRows } from './helpers/routing-view.js';

const ctx = (layer = 0): RouteContext => ({ training: false, rng: new Rng(0), layer });
const route = (r: Router, probs: number[][], N: number, layer = 0) => r.route(exactLogits(probs), N, ctx(layer));

// four experts
const A = [1 / 2, 1 / 4, 1 / 8, 1 / 8];
const B = [1 / 4, 1 / 4, 1 / 4, 1 / 4];
const C = [1 / 8, 1 / 2, 1 / 8, 1 / 4];
const X = [3 / 8, 1 / 2, 3 / 32, 1 / 32];

describe('top-k (Mixtral: k largest, renormalised)', () => {
  it('k = 2, with ties going to the lower expert', () => {
    const C2 = [1 / 2, 3 / 16, 3 / 16, 1 / 8];
    const r = route(new TopKRouter(2), [A, B, C, C2], 4);
    expectPairs(r, [
      { 0: (1 / 2) / (3 / 4), 1: (1 / 4) / (3 / 4) },
      { 0: 1 / 2, 1: 1 / 2 }, // all four tie: experts 0 and 1
      { 1: (1 / 2) / (3 / 4), 3: (1 / 4) / (3 / 4) },
      { 0: (1 / 2) / (11 / 16), 1: (3 / 16) / (11 / 16) }, // 1 and 2 tie for second: 1 wins
    ]);
    expect(r.stats.trueExpertsPerToken).toBe(2);
    expect(r.stats.droppedAssignments).toBe(0);
    expect(Array.from(r.top1)).toEqual([0, 0, 1, 0]);
  });

  it('k larger than the experts available takes them all, gates = p', () => {
    const r = route(new TopKRouter(6), [A, C], 4);
    expectPairs(r, [{ 0: 1 / 2, 1: 1 / 4, 2: 1 / 8, 3: 1 / 8 }, { 0: 1 / 8, 1: 1 / 2, 2: 1 / 8, 3: 1 / 4 }]);
  });
});

describe('top-p (paper 003 Alg. 1: stop after the first expert that makes the sum > p; gates = p)', () => {
  it('p = 0.5: a cumulative sum exactly equal to p does not stop', () => {
    const r = route(new TopPRouter(0.5), [A, B, C], 4);
    expectPairs(r, [
      { 0: 1 / 2, 1: 1 / 4 }, // 1/2 is not > 1/2; 3/4 is
      { 0: 1 / 4, 1: 1 / 4, 2: 1 / 4 }, // ties: lower index first; 1/4, 1/2, 3/4
      { 1: 1 / 2, 3: 1 / 4 },
    ]);
    expect(r.stats.trueExpertsPerToken).toBe(7 / 3);
  });

  it('p = 0.4 keeps one expert when the top one already exceeds p; p = 0.75 stops at 7/8', () => {
    expectPairs(route(new TopPRouter(0.4), [A, B, C], 4), [{ 0: 1 / 2 }, { 0: 1 / 4, 1: 1 / 4 }, { 1: 1 / 2 }]);
    expectPairs(route(new TopPRouter(0.75), [A], 4), [{ 0: 1 / 2, 1: 1 / 4, 2: 1 / 8 }]);
  });

  it('no cap: p = 1 can never be exceeded, so every expert runs; p = 0 runs the top one', () => {
    expectPairs(route(new TopPRouter(1), [A], 4), [{ 0: 1 / 2, 1: 1 / 4, 2: 1 / 8, 3: 1 / 8 }]);
    expectPairs(route(new TopPRouter(0), [B], 4), [{ 0: 1 / 4 }]);
  });
});

describe('threshold (XMoE paper 001: cumsum >= t, capacity with priority p - rank)', () => {
  it('t = 0.75 without capacity pressure (capacity = N): equality stops, gates = p', () => {
    const r = route(new ThresholdRouter(0.75, 4), [A, B, X], 4);
    expectPairs(r, [{ 0: 1 / 2, 1: 1 / 4 }, { 0: 1 / 4, 1: 1 / 4, 2: 1 / 4 }, { 0: 3 / 8, 1: 1 / 2 }]);
    expect(r.stats.capacity).toBe(3); // ceil(4 * 3 / 4) = 3 = T
    expect(r.stats.droppedAssignments).toBe(0);
  });

  it('capacity 1: C = ceil(3/4) = 1, each expert keeps its highest-priority assignment', () => {
    // expert 0: A rank 1 (r = -0.5), B rank 1 (-0.75), X rank 2 (-1.625) -> A
    // expert 1: A rank 2 (-1.75), B rank 2 (-1.75), X rank 1 (-0.5)     -> X
    // expert 2: B rank 3 (-2.75)                                          -> B
    const r = route(new ThresholdRouter(0.75, 1), [A, B, X], 4);
    expect(selectedRows(r)).toEqual([[0, 1], [0, 1, 2], [0, 1]]);
    expectPairs(r, [{ 0: 1 / 2 }, { 2: 1 / 4 }, { 1: 1 / 2 }]);
    expect(r.stats.capacity).toBe(1);
    expect(r.stats.selectedAssignments).toBe(7);
    expect(r.stats.droppedAssignments).toBe(4);
  });

  it('capacity 2: rank beats probability, equal priorities go to the lower token', () => {
    // C = ceil(2 * 3 / 4) = 2. Expert 0 keeps A and B (rank 1) over X (rank 2 with the larger
    // p = 3/8); expert 1 keeps X, then A and B tie at 1/4 - 2: A (lower token) wins.
    const r = route(new ThresholdRouter(0.75, 2), [A, B, X], 4);
    expectPairs(r, [{ 0: 1 / 2, 1: 1 / 4 }, { 0: 1 / 4, 2: 1 / 4 }, { 1: 1 / 2 }]);
    expect(r.stats.droppedAssignments).toBe(2);
    expect(r.stats.bypassedTokens).toBe(0);
  });

  it('t = 0 acts as top-1 and t = 1 sends a token to every expert', () => {
    expectPairs(route(new ThresholdRouter(0, 4), [A, X], 4), [{ 0: 1 / 2 }, { 1: 1 / 2 }]);
    expectPairs(route(new ThresholdRouter(1, 4), [A], 4), [{ 0: 1 / 2, 1: 1 / 4, 2: 1 / 8, 3: 1 / 8 }]);
  });

  it('capacity rounding: up, forgiving float noise, at most T', () => {
    expect(expertCapacity(1.1, 100, 10)).toBe(11);
    expect(expertCapacity(1, 3, 4)).toBe(1);
    expect(expertCapacity(1.5, 4, 4)).toBe(2);
    expect(expertCapacity(8, 4, 4)).toBe(4);
  });
});

describe('expert choice (paper 002: each expert takes its C best tokens, gates = p)', () => {
  const Z = B;
  it('capacity 1: C = 1, a token can get several experts or none', () => {
    const r = route(new ExpertChoiceRouter(1), [A, B, X, Z], 4);
    // e0: A (1/2); e1: X (1/2); e2: B and Z tie at 1/4 -> B; e3: B
    expectPairs(r, [{ 0: 1 / 2 }, { 2: 1 / 4, 3: 1 / 4 }, { 1: 1 / 2 }, {}]);
    expect(r.stats.bypassedTokens).toBe(1);
    expect(r.stats.trueExpertsPerToken).toBe(1);
    expect(r.stats.capacity).toBe(1);
  });

  it('default capacity 2: C = 2, two experts per token on average', () => {
    const r = route(new ExpertChoiceRouter(), [A, B, X, Z], 4);
    // e0: A, X; e1: X then A (A, B, Z tie at 1/4); e2: B, Z; e3: B, Z
    expectPairs(r, [{ 0: 1 / 2, 1: 1 / 4 }, { 2: 1 / 4, 3: 1 / 4 }, { 0: 3 / 8, 1: 1 / 2 }, { 2: 1 / 4, 3: 1 / 4 }]);
    expect(r.stats.trueExpertsPerToken).toBe(2);
    expect(new ExpertChoiceRouter().causal).toBe(false);
  });
});

describe('random drop (paper 000 baseline: top-2, second expert dropped with probability q)', () => {
  it('q = 0 is top-2; q = 1 always drops the second expert and renormalises over the kept one', () => {
    expectPairs(route(new RandomDropRouter(0, 1), [A, B], 4), [{ 0: 2 / 3, 1: 1 / 3 }, { 0: 1 / 2, 1: 1 / 2 }]);
    const r = route(new RandomDropRouter(1, 1), [A, B], 4);
    expectPairs(r, [{ 0: 1 }, { 0: 1 }]);
    expect(r.stats.selectedAssignments).toBe(4);
    expect(r.stats.droppedAssignments).toBe(2);
  });

  it('drops about q of the second experts, from a seeded stream that reset() repeats (eval too)', () => {
    const T = 4000;
    const rng = new Rng(3);
    const logits = new Tensor(Float64Array.from({ length: T * 4 }, () => rng.normal()), [T, 4]);
    const router = new RandomDropRouter(0.3, 7);
    const first = router.route(logits, 4, ctx(0));
    const rate = first.stats.droppedAssignments / T;
    expect(rate).toBeGreaterThan(0.27);
    expect(rate).toBeLessThan(0.33);
    const again = router.route(logits, 4, ctx(0));
    expect(Array.from(again.tokens)).not.toEqual(Array.from(first.tokens)); // the stream moved on
    router.reset();
    expect(Array.from(router.route(logits, 4, ctx(0)).tokens)).toEqual(Array.from(first.tokens));
    expect(Array.from(new RandomDropRouter(0.3, 7).route(logits, 4, ctx(0)).tokens)).toEqual(Array.from(first.tokens));
    expect(Array.from(new RandomDropRouter(0.3, 8).route(logits, 4, ctx(0)).tokens)).not.toEqual(Array.from(first.tokens));
    expect(Array.from(new RandomDropRouter(0.3, 7).route(logits, 4, ctx(1)).tokens)).not.toEqual(Array.from(first.tokens));
  });
});

describe('null experts (AdaMoE paper 004: top-k over N + m, renormalised over true experts only)', () => {
  // N = 2 true experts (rows 0, 1) and m = 2 null experts (rows 2, 3)
  const n0 = [1 / 2, 1 / 8, 1 / 4, 1 / 8];
  const n1 = [1 / 4, 1 / 4, 1 / 4, 1 / 4];
  const n2 = [1 / 8, 1 / 8, 1 / 2, 1 / 4];
  const n3 = [1 / 8, 3 / 16, 1 / 2, 3 / 16];

  it('k = 2: renormalise over the true experts inside the top-k; ties favour the true expert; all-null bypasses', () => {
    const router = new NullExpertsRouter(2, 2);
    expect(router.layoutFor(2).rows).toBe(4);
    const r = route(router, [n0, n1, n2, n3], 2);
    expect(selectedRows(r)).toEqual([[0, 2], [0, 1], [2, 3], [1, 2]]);
    expectPairs(r, [
      { 0: 1 }, // top-2 = {true 0, null 2}: 1/2 / 1/2
      { 0: 1 / 2, 1: 1 / 2 }, // four-way tie: the true rows win
      {}, // both null: bypass, no division by zero
      { 1: 1 }, // row 1 (true) and row 3 (null) tie at 3/16 for second: true wins
    ]);
    expect(r.stats.trueExpertsPerToken).toBe(1);
    expect(r.stats.bypassedTokens).toBe(1);
    expect(r.identityWeights).toBeNull();
    expect(Array.from(r.gates.f).every(Number.isFinite)).toBe(true);
  });

  it('k larger than N + m selects every row', () => {
    const r = route(new NullExpertsRouter(6, 2), [n0, n2, n3], 2);
    expectPairs(r, [{ 0: 4 / 5, 1: 1 / 5 }, { 0: 1 / 2, 1: 1 / 2 }, { 0: 2 / 5, 1: 3 / 5 }]);
  });

  it('identity mapping: the null slots add their raw p times x (the authors\' routing weights)', () => {
    const r = route(new NullExpertsRouter(2, 2, 'identity'), [n0, n1, n2, n3], 2);
    expectPairs(r, [{ 0: 1 }, { 0: 1 / 2, 1: 1 / 2 }, {}, { 1: 1 }]);
    expect(Array.from(r.identityWeights!.f)).toEqual([1 / 4, 0, 1 / 2 + 1 / 4, 1 / 2]);
  });
});

describe('ternary (TC-MoE paper 000: top-K over E^1, E^-1, E^0; E^0 always in the normaliser)', () => {
  // N = 2, K = 2: rows E_0^1, E_1^1, E_0^-1, E_1^-1, E_0^0, E_1^0
  const t0 = [1 / 2, 1 / 8, 1 / 8, 1 / 32, 1 / 8, 3 / 32];
  const t1 = [1 / 2, 1 / 32, 1 / 4, 3 / 32, 1 / 32, 3 / 32];
  const t2 = [1 / 8, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 9 / 32];
  const t3 = [1 / 4, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 5 / 32];
  const t4 = [1 / 32, 1 / 32, 1 / 2, 1 / 4, 3 / 32, 3 / 32];

  it('gates p / sum over (top-K ∪ E^0), signed E^-1, both signs in one pass, zero experts free', () => {
    const router = new TernaryRouter(2);
    expect(router.layoutFor(2)).toEqual({ rows: 6, numExperts: 2, nullExperts: 0, ternaryZeroExperts: 2 });
    const r = route(router, [t0, t1, t2, t3, t4], 2);
    expect(selectedRows(r)).toEqual([[0, 1], [0, 2], [4, 5], [0, 4], [2, 3]]);
    expectPairs(r, [
      // rows 1, 2 and 4 tie at 1/8 for second place: row 1 wins. Normaliser 1/2 + 1/8 + E^0 (1/8 + 3/32) = 27/32
      { 0: 16 / 27, 1: 4 / 27 },
      // E_0^1 and E_0^-1 both selected: one pass through E_0 with 1/2 / (7/8) - 1/4 / (7/8)
      { 0: 4 / 7 - 2 / 7 },
      // only zero experts: no FLOPs, output 0
      {},
      // E_1^0 (5/32) is in the normaliser though not in the top-2: 1/4 / (1/4 + 1/2 + 5/32)
      { 0: 8 / 29 },
      // E^-1 only: negative gates
      { 0: -16 / 30, 1: -8 / 30 },
    ]);
    const zero = Array.from(r.zeroExpertGates!.f);
    [7 / 27, 1 / 7, 1, 21 / 29, 6 / 30].forEach((z, t) => expect(zero[t]).toBeCloseTo(z, 12));
    expect(r.stats.tokensPerExpert).toEqual(Int32Array.from([4, 2]));
    expect(r.stats.trueExpertsPerToken).toBe(6 / 5);
    expect(r.stats.selectedAssignments).toBe(6); // the E_0^1 + E_0^-1 pair counts once
    expect(r.stats.bypassedTokens).toBe(1);
  });

  it('zero defaults to k and may differ from it', () => {
    expect(new TernaryRouter(3).layoutFor(4).rows).toBe(11);
    expect(new TernaryRouter(2, 1).layoutFor(4).rows).toBe(9);
  });
});
