/**
 * Issue 18, item 7: the papers' details as options. AdaMoE balance (paper 004 eq. 6): the null
 * experts as one averaged group (the paper's prose, default) or each its own (null_group:
 * separate: the authors' code, whose averaging selects an empty slice, computes the plain Switch
 * loss over N + m experts). TC-MoE balance (paper 000 eq. 6-9): the paper's T is the sequence
 * length, so `sequenceLength` computes the loss per sequence and averages; the default pools the
 * batch. Neither option existed before the change (unknown key errors).
 */
import { describe, expect, it } from 'vitest';
import { AdaMoeBalanceLoss } from '../src/losses/adamoe-balance.js';
import { BalanceLoss } from '../src/losses/balance.js';
import { createAuxLoss } from '../src/losses/registry.js';
import { TcMoeBalanceLoss } from '../src/losses/tcmoe-balance.js';
import { AuxLossSchema, auxLossOf } from '../src/recipes/index.js';
import { NullExpertsRouter } from '../src/routers/null-experts.js';
import type { RoutingRecord } from '../src/routers/router.js';
import { TernaryRouter } from '../src/routers/ternary.js';
import { exactRoutingRecords } from './helpers/exact-logits.js';

const val = (t: ReturnType<BalanceLoss['compute']>): number => t!.item();

describe('AdaMoE balance: averaged null group (paper) or separate nulls (authors\' code)', () => {
  // N = 2, m = 2, top-2 over 4 rows: selections {0,2}, {0,1}, {2,3}, {1,2}; f = [1/2, 1/2, 3/4, 1/4], P = [1/4, 11/64, 3/8, 13/64]
  const probs = [[1 / 2, 1 / 8, 1 / 4, 1 / 8], [1 / 4, 1 / 4, 1 / 4, 1 / 4], [1 / 8, 1 / 8, 1 / 2, 1 / 4], [1 / 8, 3 / 16, 1 / 2, 3 / 16]];
  const recs = exactRoutingRecords(new NullExpertsRouter(2, 2), 2, [probs]);

  it('averaged (default): (N+m)[f0 P0 + f1 P1 + (1/m)(f2 + f3)(P2 + P3)] = 2', () => {
    expect(val(new AdaMoeBalanceLoss().compute(recs))).toBeCloseTo(2, 14);
    expect(val(createAuxLoss({ name: 'adamoe-balance', nullGroup: 'averaged' }).compute(recs))).toBeCloseTo(2, 14);
  });

  it('separate: (N+m) sum_r f_r P_r over all N + m rows = 4 * 69.5 / 128, the Switch loss over N + m', () => {
    const expected = 4 * ((1 / 2) * (1 / 4) + (1 / 2) * (11 / 64) + (3 / 4) * (3 / 8) + (1 / 4) * (13 / 64));
    expect(expected).toBeCloseTo((4 * 69.5) / 128, 15);
    expect(val(new AdaMoeBalanceLoss('mixtral-all', 'separate').compute(recs))).toBeCloseTo(expected, 14);
    expect(val(new AdaMoeBalanceLoss('per-layer', 'separate').compute(recs))).toBeCloseTo(expected, 14);
    // two paths: the plain Switch / Mixtral balance over the N + m rows
    expect(val(createAuxLoss({ name: 'adamoe-balance', nullGroup: 'separate' }).compute(recs))).toBeCloseTo(val(new BalanceLoss().compute(recs)), 14);
  });

  it('is a recipe key, and a bad value is refused', () => {
    expect(() => createAuxLoss({ name: 'adamoe-balance', nullGroup: 'mean' })).toThrow("aux loss 'adamoe-balance': null_group must be one of averaged, separate, got 'mean'");
  });
});

describe('TC-MoE balance per sequence (the paper\'s T) or pooled (default)', () => {
  // N = 2, K = 2, 6 tokens = 2 sequences of 3
  const probs = [
    [1 / 2, 1 / 8, 1 / 8, 1 / 32, 1 / 8, 3 / 32],
    [1 / 2, 1 / 32, 1 / 4, 3 / 32, 1 / 32, 3 / 32],
    [1 / 8, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 9 / 32],
    [1 / 4, 1 / 32, 1 / 32, 1 / 32, 1 / 2, 5 / 32],
    [1 / 32, 1 / 32, 1 / 2, 1 / 4, 3 / 32, 3 / 32],
    [1 / 2, 1 / 32, 1 / 4, 1 / 32, 3 / 32, 3 / 32],
  ];
  const router = new TernaryRouter(2);
  const all = exactRoutingRecords(router, 2, [probs]);

  it('per sequence = the mean of the loss on each sequence alone (two paths), and differs from pooling', () => {
    const s1 = val(new TcMoeBalanceLoss().compute(exactRoutingRecords(router, 2, [probs.slice(0, 3)])));
    const s2 = val(new TcMoeBalanceLoss().compute(exactRoutingRecords(router, 2, [probs.slice(3)])));
    const perSeq = val(new TcMoeBalanceLoss(3).compute(all));
    expect(perSeq).toBeCloseTo((s1 + s2) / 2, 14);
    // sequence 1: selections {0,1}, {0,2}, {4,5}: f = [2, 1] / 6, mean 1/4; P = [(5/8 + 3/4 + 5/32) / 3, (1/4 + 9/32 + 1/16) / 3]
    const f = [1 / 3, 1 / 6];
    const P = [(1 / 2 + 1 / 8 + 1 / 2 + 1 / 4 + 1 / 8 + 1 / 32) / 3, (1 / 8 + 1 / 32 + 1 / 32 + 3 / 32 + 1 / 32 + 1 / 32) / 3];
    expect(s1).toBeCloseTo((f[0]! - 1 / 4) * P[0]! + (f[1]! - 1 / 4) * P[1]!, 14);
    const pooled = val(new TcMoeBalanceLoss().compute(all));
    expect(val(new TcMoeBalanceLoss(6).compute(all))).toBeCloseTo(pooled, 14);
    expect(Math.abs(perSeq - pooled)).toBeGreaterThan(1e-4);
  });

  it('is a recipe key (sequence_length), and a batch that is not whole sequences is refused', () => {
    expect(val(createAuxLoss({ name: 'tcmoe-balance', sequenceLength: 3 }).compute(all))).toBeCloseTo(val(new TcMoeBalanceLoss(3).compute(all)), 14);
    expect(() => new TcMoeBalanceLoss(4).compute(all)).toThrow("aux loss 'tcmoe-balance': layer 0 (model.layers.0.block_sparse_moe) routed 6 tokens, not a multiple of sequenceLength 4");
    const entry = AuxLossSchema.parse({ name: 'tcmoe-balance', weight: 0.01, sequence_length: 3 });
    expect(val(auxLossOf(entry).loss.compute(all))).toBeCloseTo(val(new TcMoeBalanceLoss(3).compute(all)), 14);
    const ada = AuxLossSchema.parse({ name: 'adamoe-balance', null_group: 'separate' });
    expect((auxLossOf(ada).loss as AdaMoeBalanceLoss).nullGroup).toBe('separate');
    expect(() => AuxLossSchema.parse({ name: 'adamoe-balance', null_group: 'mean' })).toThrow();
  });
});
