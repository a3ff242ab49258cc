/**
 * Every auxiliary loss: its gradient w.r.t. the router weights (two float64 MoE layers in a row,
 * so the second layer's routing also depends on the first layer's router) against central finite
 * differences.
 */
import { describe, expect, it } from 'vitest';
import type { AuxLoss } from '../src/losses/aux-loss.js';
import { createAuxLoss } from '../src/losses/registry.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { createRouter } from '../src/routers/registry.js';
import type { RouterSpec } from '../src/routers/router.js';
import { ops, Rng, Tensor } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { block64 } from './helpers/moe-block64.js';

const D = 6;
const N = 4;

function check(spec: RouterSpec, loss: AuxLoss, bias?: number[]): void {
  const router = createRouter(spec);
  const l0 = block64(router, N, D, 3, 21, { bias, layer: 0 });
  const l1 = block64(router, N, D, 3, 22, { bias, layer: 1 });
  const x = rand64([10, D], new Rng(23), { grad: false });
  const f = (): Tensor => {
    const ctx = new ForwardContext(true);
    const h = ops.add(x, l0.block.forward(x, ctx, 'model.layers.0.block_sparse_moe'));
    l1.block.forward(h, ctx, 'model.layers.1.block_sparse_moe');
    const v = loss.compute(ctx.routing);
    if (!v) throw new Error('no loss');
    return v;
  };
  const params = [...l0.routerParams, ...l1.routerParams];
  const r = gradcheck(f, params);
  expect(r.maxRelError, r.perInput.map((e) => e.toExponential(1)).join(' ')).toBeLessThan(1e-6);
  expect(Math.max(...params.map((p) => Math.max(...Array.from(p.grad!.f).map(Math.abs))))).toBeGreaterThan(1e-4);
}

const ternaryBias = [0, 0, 0, 0, -0.2, -0.2, -0.2, -0.2, -0.5, -0.5];

describe('aux-loss gradients w.r.t. router weights (finite differences)', () => {
  it('balance mixtral-all', () => check({ name: 'top-k', k: 2 }, createAuxLoss({ name: 'balance' })));
  it('balance per-layer', () => check({ name: 'top-k', k: 2 }, createAuxLoss({ name: 'balance', form: 'per-layer' })));
  it('balance top1 (XMoE)', () => check({ name: 'threshold', t: 0.7, capacity: 2 }, createAuxLoss({ name: 'balance', form: 'top1' })));
  it('adamoe-balance', () => check({ name: 'null-experts', k: 3, m: 4 }, createAuxLoss({ name: 'adamoe-balance' })));
  it('adamoe-balance per-layer', () => check({ name: 'null-experts', k: 3, m: 4 }, createAuxLoss({ name: 'adamoe-balance', form: 'per-layer' })));
  it('tcmoe-balance', () => check({ name: 'ternary', k: 2 }, createAuxLoss({ name: 'tcmoe-balance' }), ternaryBias));
  it('tcmoe-reward', () => check({ name: 'ternary', k: 2 }, createAuxLoss({ name: 'tcmoe-reward' }), ternaryBias));
  it('entropy', () => check({ name: 'top-p', p: 0.5 }, createAuxLoss({ name: 'entropy' })));
  it('topp-balance', () => check({ name: 'top-p', p: 0.5 }, createAuxLoss({ name: 'topp-balance', sequenceLength: 5 })));
  it('z-loss', () => check({ name: 'top-k', k: 2 }, createAuxLoss({ name: 'z-loss' })));
});
