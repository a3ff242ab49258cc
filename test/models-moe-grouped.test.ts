/**
 * The MoE layer's grouped path (every expert projection in one grouped GEMM) equals the
 * one-expert-at-a-time path: outputs and gradients of the input, router and expert weights.
 */
import { describe, expect, it } from 'vitest';
import { blockOutputAndGrads } from './helpers/block-grads.js';
import { tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';
import { createRouter } from '../src/routers/registry.js';

function run(grouped: boolean, routerSpec: string | null): { y: number[]; grads: Map<string, number[]> } {
  const model = tinyModel(tinyMixtralConfig({ num_local_experts: 4, hidden_size: 32, intermediate_size: 24 }), 4, 0.2);
  if (routerSpec) model.setRouter(createRouter({ name: routerSpec, ...(routerSpec === 'top-k' ? { k: 3 } : { p: 0.5 }) }));
  const block = model.moeBlocks()[0]!;
  block.grouped = grouped;
  return blockOutputAndGrads(block, 40, 32, [...block.namedParameters()]);
}

describe('MoE layer: grouped GEMM path == per-expert path', () => {
  for (const router of [null, 'top-k', 'top-p']) {
    it(`router ${router ?? 'top-2 (config)'}`, () => {
      const a = run(true, router);
      const b = run(false, router);
      const close = (p: number[], q: number[]): number => {
        let d = 0;
        let s = 1e-12;
        for (let i = 0; i < p.length; i++) {
          d = Math.max(d, Math.abs(p[i]! - q[i]!));
          s = Math.max(s, Math.abs(q[i]!));
        }
        return d / s;
      };
      expect(close(a.y, b.y)).toBeLessThan(1e-6);
      expect([...a.grads.keys()]).toEqual([...b.grads.keys()]);
      for (const [n, g] of a.grads) {
        expect(g.length, n).toBe(b.grads.get(n)!.length);
        expect(close(g, b.grads.get(n)!), n).toBeLessThan(1e-5);
      }
    });
  }
});
