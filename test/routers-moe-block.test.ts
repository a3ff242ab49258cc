/**
 * The MoE block with every router: hand-worked outputs (signed ternary gates, all-null tokens that
 * output exactly 0, identity nulls), and gradients w.r.t. x, the expert weights and the router
 * weights against finite differences (float64, js backend) for each router that is
 * differentiable almost everywhere.
 */
import { describe, expect, it } from 'vitest';
import { ForwardContext } from '../src/models/forward-context.js';
import { ExpertChoiceRouter } from '../src/routers/expert-choice.js';
import { NullExpertsRouter } from '../src/routers/null-experts.js';
import type { Router } from '../src/routers/router.js';
import { TernaryRouter } from '../src/routers/ternary.js';
import { ThresholdRouter } from '../src/routers/threshold.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { TopPRouter } from '../src/routers/top-p.js';
import { backward, gradOf, noGrad, ops, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { exactLogits } from './helpers/exact-logits.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { block64, evalCtx, FixedLogits } from './helpers/moe-block64.js';

const D = 5;
const F = 4;

/** Rows of expert e's output on each token of x [T, D]. */
function expertOut(block: ReturnType<typeof block64>['block'], e: number, x: Tensor): Float64Array {
  return Float64Array.from(noGrad(() => block.experts.at(e).forward(x)).f);
}

describe('MoE block forward, hand-worked', () => {
  it('ternary: signed gates, both signs of one expert in one pass, only-E^0 tokens output 0', () => {
    const probs = [
      [1 / 2, 1 / 8, 1 / 8, 1 / 32, 1 / 8, 3 / 32],
      [1 / 2, 1 / 32, 1 / 4, 3 / 32, 1 / 32, 3 / 32],
      [1 / 8, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 9 / 32],
      [1 / 32, 1 / 32, 1 / 2, 1 / 4, 3 / 32, 3 / 32],
    ];
    const { block } = block64(new TernaryRouter(2), 2, D, F, 3);
    block.gate = new FixedLogits(exactLogits(probs), 0, 6);
    const x = rand64([4, D], new Rng(5), { grad: false });
    const y = noGrad(() => block.forward(x, evalCtx())).f;
    const e0 = expertOut(block, 0, x);
    const e1 = expertOut(block, 1, x);
    const expected = [
      (i: number) => (16 / 27) * e0[i]! + (4 / 27) * e1[i]!,
      (i: number) => (2 / 7) * e0[D + i]!,
      () => 0,
      (i: number) => (-16 / 30) * e0[3 * D + i]! + (-8 / 30) * e1[3 * D + i]!,
    ];
    for (let t = 0; t < 4; t++) for (let i = 0; i < D; i++) expect(y[t * D + i]!).toBeCloseTo(expected[t]!(i), 12);
    for (let i = 0; i < D; i++) expect(y[2 * D + i]).toBe(0);
  });

  it('null experts (zero mapping): an all-null token outputs exactly 0, no NaN in output or gradients', () => {
    const probs = [[1 / 2, 1 / 8, 1 / 4, 1 / 8], [1 / 8, 1 / 8, 1 / 2, 1 / 4]];
    const { block, expertParams } = block64(new NullExpertsRouter(2, 2), 2, D, F, 4);
    const logits = exactLogits(probs);
    block.gate = new FixedLogits(logits, 0, 2);
    block.setGate2(new FixedLogits(logits, 2, 4));
    const x = rand64([2, D], new Rng(6));
    zeroGrad([x, ...expertParams]);
    const y = withScope(() => {
      const out = block.forward(x, evalCtx());
      backward(ops.sum(ops.square(out)));
      return Float64Array.from(out.f);
    });
    const e0 = expertOut(block, 0, x);
    for (let i = 0; i < D; i++) {
      expect(y[i]!).toBeCloseTo(e0[i]!, 12); // gate 1 on expert 0
      expect(y[D + i]).toBe(0);
    }
    const gx = gradOf(x)!.f;
    expect(Array.from(gx).every(Number.isFinite)).toBe(true);
    for (let i = 0; i < D; i++) expect(gx[D + i]).toBe(0); // the bypassed token gets no gradient through the layer
  });

  it('null experts (identity mapping): the layer adds the selected nulls\' p times x', () => {
    const probs = [[1 / 2, 1 / 8, 1 / 4, 1 / 8], [1 / 8, 1 / 8, 1 / 2, 1 / 4]];
    const { block } = block64(new NullExpertsRouter(2, 2, 'identity'), 2, D, F, 4);
    const logits = exactLogits(probs);
    block.gate = new FixedLogits(logits, 0, 2);
    block.setGate2(new FixedLogits(logits, 2, 4));
    const x = rand64([2, D], new Rng(6), { grad: false });
    const y = noGrad(() => block.forward(x, evalCtx())).f;
    const e0 = expertOut(block, 0, x);
    for (let i = 0; i < D; i++) {
      expect(y[i]!).toBeCloseTo(e0[i]! + (1 / 4) * x.f[i]!, 12);
      expect(y[D + i]!).toBeCloseTo((3 / 4) * x.f[D + i]!, 12);
    }
  });
});

describe('MoE block gradients (finite differences, float64)', () => {
  const cases: [string, Router, number, number[] | undefined][] = [
    ['top-k k=2', new TopKRouter(2), 4, undefined],
    ['top-p p=0.5', new TopPRouter(0.5), 4, undefined],
    ['threshold t=0.8 capacity=1', new ThresholdRouter(0.8, 1), 4, undefined],
    ['expert-choice capacity=2', new ExpertChoiceRouter(2), 4, undefined],
    ['null-experts k=3 m=4 zero', new NullExpertsRouter(3, 4), 4, undefined],
    ['null-experts k=3 m=4 identity', new NullExpertsRouter(3, 4, 'identity'), 4, undefined],
    ['ternary k=2 zero=2', new TernaryRouter(2), 3, [0, 0, 0, -1, -1, -1, -10, -10].map((b) => b * 0.1)],
  ];
  for (const [name, router, N, bias] of cases) {
    it(name, () => {
      const { block, routerParams, expertParams } = block64(router, N, D, F, 11, { bias });
      const x = rand64([7, D], new Rng(12));
      // make sure the case exercises routing: several experts, and (for capacity) some drops
      const routing = noGrad(() => {
        const ctx = new ForwardContext(false);
        block.forward(x, ctx);
        return ctx.routing[0]!.routing;
      });
      expect(routing.tokens.length).toBeGreaterThan(0);
      if (router instanceof ThresholdRouter) expect(routing.stats.droppedAssignments).toBeGreaterThan(0);
      if (router instanceof TernaryRouter) expect(routing.gates.f.some((g) => g < 0)).toBe(true);
      // zero-mapped nulls: gates p_i / sum_true p_j do not depend on the null logits at all, so
      // gate2 gets exactly no gradient from the output (checked below, not by relative error)
      const zeroNulls = router instanceof NullExpertsRouter && router.mapping === 'zero';
      const checked = zeroNulls ? routerParams.slice(0, 1) : routerParams;
      const r = gradcheck(() => block.forward(x, new ForwardContext(true)), [x, ...checked, ...expertParams]);
      if (zeroNulls) {
        const g2 = routerParams[1]!;
        zeroGrad([g2]);
        withScope(() => backward(ops.sum(ops.square(block.forward(x, new ForwardContext(true))))));
        // zero up to rounding in the softmax backward (the true rows' gradients are O(1))
        expect(Math.max(...Array.from(gradOf(g2)!.f).map(Math.abs))).toBeLessThan(1e-12);
      }
      expect(r.maxRelError, r.perInput.map((e) => e.toExponential(1)).join(' ')).toBeLessThan(1e-5);
      // the router gets a real gradient
      expect(r.perInput[1]).toBeLessThan(1e-5);
      expect(Math.max(...Array.from(routerParams[0]!.grad!.f).map(Math.abs))).toBeGreaterThan(1e-6);
    });
  }
});
