/**
 * DeepSeek-V3's group-limited sigmoid routing (routers/group-top-k.ts): a hand-worked example, agreement with a
 * brute-force statement of the rule on random inputs (with and without the selection bias), the gates'
 * finite-difference gradient, and the one-line errors.
 */
import { describe, expect, it } from 'vitest';
import { createRouter, parseRouterSpec } from '../src/routers/registry.js';
import { GroupTopKRouter } from '../src/routers/group-top-k.js';
import { Rng, Tensor } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { pairsByToken, selectedRows } from './helpers/routing-view.js';

const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const ctx = (selectionBias: Float32Array | null = null) => ({ training: false, rng: new Rng(0), layer: 3, selectionBias });

/** The rule as the report states it, by sorting (no shared code with the router). */
function bruteForce(logits: number[], bias: number[], groups: number, groupK: number, k: number, renorm: boolean): Record<number, number> {
  const N = logits.length;
  const per = N / groups;
  const s = logits.map(sig);
  const c = s.map((v, i) => v + bias[i]!);
  const gscore = Array.from({ length: groups }, (_, g) => {
    const top = c.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
    return top[0]! + top[1]!;
  });
  const keptGroups = gscore.map((v, g) => [v, g] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, groupK).map((x) => x[1]);
  const cand = c.map((v, i) => [v, i] as const).filter(([, i]) => keptGroups.includes(Math.floor(i / per)));
  const chosen = cand.sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((x) => x[1]);
  const denom = renorm ? chosen.reduce((a, i) => a + s[i]!, 0) : 1;
  return Object.fromEntries(chosen.map((i) => [i, s[i]! / denom]));
}

describe('group-top-k router (DeepSeek-V3 / Kimi-K2)', () => {
  it('hand-worked example: 8 experts in 4 groups, best 2 groups, top-2, renormalised', () => {
    // c = sigmoid(logit) (no bias). Groups {0,1} {2,3} {4,5} {6,7}; group scores = sum of both experts.
    const logits = [2, -1.5, 0.5, 0.4, 1.5, -3, 0, 0];
    // s: .881 .182 | .622 .599 | .818 .047 | .5 .5 -> group scores 1.063, 1.221, 0.865, 1.0 -> keep groups 1 and 0
    // experts of groups 0 and 1: 0 (.881), 2 (.622), 3 (.599), 1 (.182) -> top-2 = {0, 2}; expert 4 (.818) is in a dropped group
    const r = new GroupTopKRouter(2, 4, 2, true).route(Tensor.from(logits, [1, 8]), 8, ctx());
    expect(selectedRows(r)).toEqual([[0, 2]]);
    const s0 = sig(2);
    const s2 = sig(0.5);
    const g = pairsByToken(r)[0]!;
    expect(g[0]).toBeCloseTo(s0 / (s0 + s2), 6);
    expect(g[2]).toBeCloseTo(s2 / (s0 + s2), 6);
    // the selection bias changes the choice, not the gates: +0.3 on expert 5 lifts group 2 (0.818 + 0.347 = 1.165)
    // above group 0 (1.063), so groups 1 and 2 are kept: experts 4 (.818) and 2 (.622)
    const bias = new Float32Array([0, 0, 0, 0, 0, 0.3, 0, 0]);
    const rb = new GroupTopKRouter(2, 4, 2, true).route(Tensor.from(logits, [1, 8]), 8, ctx(bias));
    expect(selectedRows(rb)).toEqual([[2, 4]]);
    const gb = pairsByToken(rb)[0]!;
    expect(gb[4]).toBeCloseTo(sig(1.5) / (s2 + sig(1.5)), 6);
    // not renormalised: the gates are the sigmoid scores themselves
    const rn = new GroupTopKRouter(2, 4, 2, false).route(Tensor.from(logits, [1, 8]), 8, ctx());
    expect(pairsByToken(rn)[0]![0]).toBeCloseTo(s0, 6);
  });

  it('agrees with a brute-force statement of the rule on random tokens', () => {
    const rng = new Rng(5);
    for (const [N, groups, groupK, k, renorm] of [[16, 4, 2, 3, true], [16, 8, 3, 4, false], [12, 1, 1, 5, true], [64, 8, 4, 8, true]] as const) {
      const T = 40;
      const logits = Array.from({ length: T * N }, () => rng.normal() * 2);
      const bias = Float32Array.from({ length: N }, () => rng.normal() * 0.1);
      const r = new GroupTopKRouter(k, groups, groupK, renorm).route(Tensor.from(logits, [T, N]), N, ctx(bias));
      const got = pairsByToken(r);
      for (let t = 0; t < T; t++) {
        const want = bruteForce(logits.slice(t * N, (t + 1) * N), Array.from(bias), groups, groupK, k, renorm);
        expect(Object.keys(got[t]!).map(Number).sort((a, b) => a - b), `token ${t}`).toEqual(Object.keys(want).map(Number).sort((a, b) => a - b));
        for (const [e, v] of Object.entries(want)) expect(got[t]![Number(e)]!).toBeCloseTo(v, 5);
      }
      // probs: the normalised sigmoid scores
      const p = r.probs.f;
      let sum = 0;
      for (let i = 0; i < N; i++) sum += p[i]!;
      expect(sum).toBeCloseTo(1, 5);
    }
  });

  it('gates have the finite-difference gradient with respect to the logits', () => {
    const rng = new Rng(11);
    for (const renorm of [true, false]) {
      const logits = rand64([6, 8], rng, { std: 1.5 });
      const router = new GroupTopKRouter(3, 4, 2, renorm);
      const bias = new Float32Array([0.05, -0.02, 0.1, 0, 0.03, -0.1, 0.02, 0]);
      const res = gradcheck((x) => router.route(x, 8, ctx(bias)).gates, [logits]);
      expect(res.maxRelError).toBeLessThan(1e-6);
    }
  });

  it('is in the registry with its keys; bad settings are one-line errors', () => {
    const spec = parseRouterSpec('group-top-k:k=8,groups=8,group_k=4');
    expect(spec).toEqual({ name: 'group-top-k', k: 8, groups: 8, group_k: 4 });
    expect(createRouter(spec).spec).toEqual({ name: 'group-top-k', k: 8, groups: 8, group_k: 4, renormalize: true });
    expect(() => parseRouterSpec('group-top-k:k=2,groups=2,group_k=3')).toThrow(/group_k 3 is more than groups 2/);
    expect(() => parseRouterSpec('group-top-k:renormalize=maybe')).toThrow(/renormalize must be true or false/);
    const x = Tensor.from(new Array(10).fill(0), [1, 10]);
    expect(() => new GroupTopKRouter(2, 4, 2).route(x, 10, ctx())).toThrow(/10 experts do not split into 4 groups/);
    expect(() => new GroupTopKRouter(1, 10, 2).route(x, 10, ctx())).toThrow(/a group's score is its 2 best experts/);
    expect(() => new GroupTopKRouter(6, 2, 1).route(x, 10, ctx())).toThrow(/k 6 is more than the 5 experts of the 1 kept groups/);
    expect(() => new GroupTopKRouter(2, 2, 1).route(x, 10, ctx(new Float32Array(3)))).toThrow(/layer 3 has a selection bias of 3 values for 10 experts/);
  });
});
