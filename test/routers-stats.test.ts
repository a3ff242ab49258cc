/**
 * RouterStatsAccumulator over hand-worked routings: load, histogram, dropped rate, scored-position
 * masks, capacity-bound MoE-layer FLOPs and whole-model FLOPs against plain top-k.
 */
import { describe, expect, it } from 'vitest';
import type { Router, RoutingRecord } from '../src/routers/router.js';
import { flopsAgainstTopK, RouterStatsAccumulator, scoredPositions, type ModelFlopDims } from '../src/routers/stats.js';
import { TernaryRouter } from '../src/routers/ternary.js';
import { ThresholdRouter } from '../src/routers/threshold.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { TopPRouter } from '../src/routers/top-p.js';
import { Rng } from '../src/tensor/index.js';
import { exactLogits } from './helpers/exact-logits.js';

const A = [1 / 2, 1 / 4, 1 / 8, 1 / 8];
const B = [1 / 4, 1 / 4, 1 / 4, 1 / 4];
const X = [3 / 8, 1 / 2, 3 / 32, 1 / 32];

function rec(router: Router, probs: number[][], N: number, layer: number): RoutingRecord {
  return { layer, module: `model.layers.${layer}.block_sparse_moe`, routing: router.route(exactLogits(probs), N, { training: false, rng: new Rng(0), layer }) };
}

const dims: ModelFlopDims = {
  hiddenSize: 4, numLayers: 2, vocabSize: 10, numHeads: 2, numKvHeads: 1, headDim: 2, intermediateSize: 8,
  expertIntermediateSize: 3, moeLayers: [1], numExperts: 4, topK: 2,
};

describe('RouterStatsAccumulator', () => {
  it('load, histogram, tokens per expert over layers and forward passes', () => {
    const acc = new RouterStatsAccumulator();
    // top-p 0.5: A {0,1}, B {0,1,2}, X {1,0}; top-p 0.4: A {0}, B {0,1}, X {1}
    acc.add([rec(new TopPRouter(0.5), [A, B, X], 4, 0), rec(new TopPRouter(0.4), [A, B, X], 4, 1)]);
    acc.add([rec(new TopPRouter(0.5), [A], 4, 0), rec(new TopPRouter(0.4), [A], 4, 1)]);
    const s = acc.summary();
    expect(s.forwardPasses).toBe(2);
    expect(s.scoredTokens).toBe(4);
    expect(s.load).toBeCloseTo((7 + 2 + 4 + 1) / 8, 14);
    expect(s.layers.map((l) => l.load)).toEqual([9 / 4, 5 / 4]);
    expect(s.layers[0]!.tokensPerExpert).toEqual([4, 4, 1, 0]);
    expect(s.layers[0]!.expertsPerTokenHistogram).toEqual([0, 0, 3, 1]);
    expect(s.layers[1]!.expertsPerTokenHistogram).toEqual([0, 3, 1]);
    expect(s.droppedRate).toBe(0);
    expect(s.bypassRate).toBe(0);
    expect(s.flops).toBeNull();
  });

  it('a scored-positions mask leaves tokens out (here B)', () => {
    const acc = new RouterStatsAccumulator();
    acc.add([rec(new ThresholdRouter(0.75, 1), [A, B, X], 4, 0)], [1, 0, 1]);
    const l = acc.summary().layers[0]!;
    // capacity 1 keeps A@0, B@2, X@1; of A's {0,1} and X's {1,0} one each is dropped
    expect(l.scoredTokens).toBe(2);
    expect(l.load).toBe(1);
    expect(l.selectedAssignments).toBe(4);
    expect(l.droppedAssignments).toBe(2);
    expect(l.droppedRate).toBe(0.5);
    expect(l.tokensPerExpert).toEqual([1, 1, 0, 0]);
    expect(l.capacity).toEqual({ min: 1, max: 1 });
    // padding-inclusive: N * C / T = 4 * 1 / 3 passes per token, for all routed positions
    expect(l.expertPassesPerToken).toBeCloseTo(4 / 3, 14);
    expect(() => acc.add([rec(new TopKRouter(2), [A, B], 4, 0)], [1])).toThrow(
      'RouterStatsAccumulator.add: the scored-positions mask has 1 entries but layer 0 (model.layers.0.block_sparse_moe) routed 2 tokens',
    );
    expect(Array.from(scoredPositions([5, 7, -100]))).toEqual([1, 1, 0]);
  });

  it('ternary: both signs of one expert are one true expert; only-E^0 tokens are bypassed', () => {
    const acc = new RouterStatsAccumulator();
    const probs = [
      [1 / 2, 1 / 32, 1 / 4, 3 / 32, 1 / 32, 3 / 32], // E_0^1 + E_0^-1
      [1 / 8, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 9 / 32], // E^0 only
    ];
    acc.add([rec(new TernaryRouter(2), probs, 2, 0)]);
    const s = acc.summary();
    expect(s.load).toBe(0.5);
    expect(s.bypassRate).toBe(0.5);
    expect(s.layers[0]!.selectedAssignments).toBe(1);
    expect(s.layers[0]!.expertsPerTokenHistogram).toEqual([1, 1]);
  });

  it('FLOPs against plain top-k: MoE layer and whole model, hand-computed', () => {
    const acc = new RouterStatsAccumulator();
    // MoE layer 1 with top-p 0.4 on A, X: one expert each (load 1)
    acc.add([rec(new TopPRouter(0.4), [A, X], 4, 1)]);
    const s = acc.summary(dims);
    expect(s.load).toBe(1);
    // per token: head 2*4*10 = 80; attention 2*4*(2*2)*2 + 2*2*4*(1*2) = 96 per layer; dense FFN 6*4*8 = 192;
    // MoE: router 2*4*4 = 32 + load * 6*4*3 = 72 per expert
    expect(s.flops!.model.perToken).toBe(80 + 2 * 96 + 192 + 32 + 72);
    expect(s.flops!.model.baselinePerToken).toBe(80 + 2 * 96 + 192 + 32 + 2 * 72);
    expect(s.flops!.model.reduction).toBeCloseTo(72 / 640, 14);
    expect(s.flops!.moeLayer).toEqual({ ratio: 0.5, reduction: 0.5 });
    // attention scores are counted when a context length is given
    expect(flopsAgainstTopK(s.layers, { ...dims, contextLength: 10 }).model.perToken).toBe(568 + 2 * (2 * 2 * 2 * 2 * 10));
  });

  it('capacity-bound MoE-layer FLOPs include padding (paper 001 eq. 6)', () => {
    const acc = new RouterStatsAccumulator();
    acc.add([rec(new ThresholdRouter(0.75, 1), [A, B, X], 4, 1)]);
    const s = acc.summary(dims);
    expect(s.load).toBe(1);
    expect(s.flops!.moeLayer.ratio).toBeCloseTo(4 / 3 / 2, 14);
  });

  it('an include filter keeps only some records (e.g. MoE blocks, not Mo-LoRA linears)', () => {
    const acc = new RouterStatsAccumulator({ include: (r) => r.module.endsWith('block_sparse_moe') });
    const lora = { ...rec(new TopKRouter(1), [A, B], 4, 0), module: 'model.layers.0.self_attn.q_proj' };
    acc.add([lora, rec(new TopKRouter(2), [A, B], 4, 0)]);
    const s = acc.summary();
    expect(s.layers.map((l) => l.module)).toEqual(['model.layers.0.block_sparse_moe']);
    expect(s.load).toBe(2);
  });

  it('the summary is plain JSON', () => {
    const acc = new RouterStatsAccumulator();
    acc.add([rec(new TopKRouter(2), [A, B], 4, 1)]);
    const s = acc.summary(dims);
    const round = JSON.parse(JSON.stringify(s)) as ReturnType<typeof s.toJSON>;
    expect(round).toEqual(s.toJSON());
    expect(round.load).toBe(2);
    expect(round.flops!.model.ratio).toBe(1);
    expect(round.layers[0]!.tokensPerExpert).toEqual([2, 2, 0, 0]);
  });
});
