/**
 * Each auxiliary loss against a value computed by hand from its paper's formula, on routings of
 * dyadic probabilities (selections known exactly).
 */
import { describe, expect, it } from 'vitest';
import { AdaMoeBalanceLoss } from '../src/losses/adamoe-balance.js';
import { BalanceLoss } from '../src/losses/balance.js';
import { EntropyLoss } from '../src/losses/entropy.js';
import { TcMoeBalanceLoss } from '../src/losses/tcmoe-balance.js';
import { TcMoeRewardLoss } from '../src/losses/tcmoe-reward.js';
import { TopPBalanceLoss } from '../src/losses/topp-balance.js';
import { ZLoss } from '../src/losses/z-loss.js';
import { NullExpertsRouter } from '../src/routers/null-experts.js';
import type { RoutingRecord } from '../src/routers/router.js';
import { TernaryRouter } from '../src/routers/ternary.js';
import { TopKRouter } from '../src/routers/top-k.js';
import { TopPRouter } from '../src/routers/top-p.js';
import { exactRoutingRecords } from './helpers/exact-logits.js';

const A = [1 / 2, 1 / 4, 1 / 8, 1 / 8];
const B = [1 / 4, 1 / 4, 1 / 4, 1 / 4];
const C = [1 / 8, 1 / 2, 1 / 8, 1 / 4];
const X = [3 / 8, 1 / 2, 3 / 32, 1 / 32];


const val = (t: ReturnType<BalanceLoss['compute']>): number => t!.item();

describe('Switch / Mixtral balance', () => {
  // top-2: A {0,1}, B {0,1} in layer 0; C {1,3}, X {1,0} in layer 1
  const recs = exactRoutingRecords(new TopKRouter(2), 4, [[A, B], [C, X]]);

  it('mixtral-all: f over all layers\' (token, slot) assignments (sum f = k), N * sum f P', () => {
    // f = [3/4, 1, 0, 1/4]; P = [5/16, 3/8, 19/128, 21/128]
    expect(val(new BalanceLoss('mixtral-all').compute(recs))).toBeCloseTo((4 * 333) / 512, 14);
  });

  it('mixtral-all equals a transcription of HF load_balancing_loss_func (one-hot [LT, k, N] means)', () => {
    const all = [A, B, C, X];
    const topk = [[0, 1], [0, 1], [1, 3], [1, 0]];
    const N = 4;
    const k = 2;
    // tokens_per_expert [k, N] = mean over tokens of one_hot(selected); router_prob_per_expert [N]
    const tpe = Array.from({ length: k }, (_, j) => Array.from({ length: N }, (_, e) => topk.filter((s) => s[j] === e).length / all.length));
    const rppe = Array.from({ length: N }, (_, e) => all.reduce((s, p) => s + p[e]!, 0) / all.length);
    let overall = 0;
    for (let j = 0; j < k; j++) for (let e = 0; e < N; e++) overall += tpe[j]![e]! * rppe[e]!;
    expect(val(new BalanceLoss('mixtral-all').compute(recs))).toBeCloseTo(overall * N, 14);
  });

  it('per-layer: mean over layers', () => {
    expect(val(new BalanceLoss('per-layer').compute(recs))).toBeCloseTo((5 / 2 + 89 / 32) / 2, 14);
  });

  it('top1 (XMoE eq. 7): f counts each token\'s top choice only', () => {
    // layer 0: top-1 of A and B is expert 0 -> 4 * 3/8; layer 1: expert 1 for both -> 4 * 1/2
    expect(val(new BalanceLoss('top1').compute(recs))).toBeCloseTo((3 / 2 + 2) / 2, 14);
  });

  it('no records: null', () => {
    expect(new BalanceLoss().compute([])).toBeNull();
  });
});

describe('AdaMoE balance (null experts as one averaged group, prefactor N + m)', () => {
  // N = 2, m = 2, top-2 over 4 rows: selections {0,2}, {0,1}, {2,3}, {1,2}
  const probs = [[1 / 2, 1 / 8, 1 / 4, 1 / 8], [1 / 4, 1 / 4, 1 / 4, 1 / 4], [1 / 8, 1 / 8, 1 / 2, 1 / 4], [1 / 8, 3 / 16, 1 / 2, 3 / 16]];
  const recs = exactRoutingRecords(new NullExpertsRouter(2, 2), 2, [probs]);

  it('(N+m) [f0 P0 + f1 P1 + (1/m)(f2 + f3)(P2 + P3)]', () => {
    // f = [1/2, 1/2, 3/4, 1/4], P = [1/4, 11/64, 3/8, 13/64]
    const expected = 4 * ((1 / 2) * (1 / 4) + (1 / 2) * (11 / 64) + (1 / 2) * (3 / 4 + 1 / 4) * (3 / 8 + 13 / 64));
    expect(expected).toBe(2);
    expect(val(new AdaMoeBalanceLoss().compute(recs))).toBeCloseTo(2, 14);
    expect(val(new AdaMoeBalanceLoss('per-layer').compute(recs))).toBeCloseTo(2, 14);
    // treating the nulls as distinct experts (the plain balance loss) gives another value
    expect(val(new BalanceLoss().compute(recs))).toBeCloseTo(4 * 69.5 / 128, 14);
  });

  it('refuses records without null experts', () => {
    expect(() => new AdaMoeBalanceLoss().compute(exactRoutingRecords(new TopKRouter(2), 4, [[A]]))).toThrow("aux loss 'adamoe-balance': layer 0 (model.layers.0.block_sparse_moe) has no null experts");
  });
});

describe('TC-MoE balance and reward', () => {
  // N = 2, K = 2; selections {0,1}, {0,2}, {4,5}, {0,4}, {2,3}
  const probs = [
    [1 / 2, 1 / 8, 1 / 8, 1 / 32, 1 / 8, 3 / 32],
    [1 / 2, 1 / 32, 1 / 4, 3 / 32, 1 / 32, 3 / 32],
    [1 / 8, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 9 / 32],
    [1 / 4, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 5 / 32],
    [1 / 32, 1 / 32, 1 / 2, 1 / 4, 3 / 32, 3 / 32],
  ];
  const recs = exactRoutingRecords(new TernaryRouter(2), 2, [probs]);

  it('balance (eq. 6-9): sum (f_i - mean f) P_i over ternary pairs, no N prefactor', () => {
    // f = [4, 2] / (K T) = [2/5, 1/5], mean 3/10; P = [15/32, 11/80]
    const expected = (2 / 5 - 3 / 10) * (15 / 32) + (1 / 5 - 3 / 10) * (11 / 80);
    expect(expected).toBeCloseTo(53 / 1600, 15);
    expect(val(new TcMoeBalanceLoss().compute(recs))).toBeCloseTo(53 / 1600, 14);
  });

  it('reward (eq. 12): minus the mean over tokens of the summed E^0 gates', () => {
    const zero = [7 / 27, 1 / 7, 1, 21 / 29, 1 / 5];
    expect(val(new TcMoeRewardLoss().compute(recs))).toBeCloseTo(-zero.reduce((a, b) => a + b) / 5, 14);
  });

  it('refuses records without ternary rows', () => {
    expect(() => new TcMoeBalanceLoss().compute(exactRoutingRecords(new TopKRouter(2), 4, [[A]]))).toThrow('has no ternary router rows');
    expect(() => new TcMoeRewardLoss().compute(exactRoutingRecords(new TopKRouter(2), 4, [[A]]))).toThrow('has no zero experts');
  });
});

describe('top-p dynamic losses (paper 003)', () => {
  it('entropy Loss_d: -sum P log P per token, averaged over tokens, then layers', () => {
    const recs = exactRoutingRecords(new TopPRouter(0.4), 4, [[A, B], [C, X]]);
    const H = (p: number[]): number => -p.reduce((s, q) => s + q * Math.log(q), 0);
    expect(H(A)).toBeCloseTo(1.75 * Math.LN2, 15);
    const expected = ((H(A) + H(B)) / 2 + (H(C) + H(X)) / 2) / 2;
    expect(val(new EntropyLoss().compute(recs))).toBeCloseTo(expected, 14);
  });

  it('balance Loss_b per sequence of M tokens: N sum f_i Q_i over dynamic sets', () => {
    // p = 0.5: A {0,1}, B {0,1,2}, C {1,3}, X {1,0}
    const recs = exactRoutingRecords(new TopPRouter(0.5), 4, [[A, B, C, X]]);
    expect(val(new TopPBalanceLoss(2).compute(recs))).toBeCloseTo((23 / 8 + 89 / 32) / 2, 14);
    expect(val(new TopPBalanceLoss().compute(recs))).toBeCloseTo(2.75, 14);
    expect(() => new TopPBalanceLoss(3).compute(recs)).toThrow("aux loss 'topp-balance': layer 0 (model.layers.0.block_sparse_moe) routed 4 tokens, not a multiple of sequenceLength 3");
  });
});

describe('router z-loss', () => {
  it('mean over tokens of logsumexp(logits)^2', () => {
    // exactLogits puts the max logit at 0, so logsumexp = log(1 / p_max): ln 2 for A, ln 4 for B
    const recs = exactRoutingRecords(new TopKRouter(2), 4, [[A, B]]);
    expect(val(new ZLoss().compute(recs))).toBeCloseTo(((Math.LN2 ** 2) + (2 * Math.LN2) ** 2) / 2, 14);
  });
});
