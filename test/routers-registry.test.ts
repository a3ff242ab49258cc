/**
 * Router specs on the command line and in configs: names, keys, defaults, one-line errors, and
 * swapping routers on a built model.
 */
import { describe, expect, it } from 'vitest';
import { ForwardContext } from '../src/models/forward-context.js';
import { createRouter, parseRouterSpec, ROUTERS, routerUsage } from '../src/routers/registry.js';
import { noGrad, Tensor, withScope } from '../src/tensor/index.js';
import { tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';

describe('router registry', () => {
  it('has exactly the eight routers with their keys', () => {
    expect(ROUTERS.map((r) => `${r.name}:${Object.keys(r.keys).join(',')}`)).toEqual([
      'top-k:k,renormalize', 'top-p:p', 'threshold:t,capacity', 'expert-choice:capacity', 'random-drop:q,seed', 'null-experts:k,m,mapping', 'ternary:k,zero',
      'group-top-k:k,groups,group_k,renormalize',
    ]);
  });

  it('parses NAME:key=value specs and fills defaults', () => {
    expect(parseRouterSpec('top-k:k=1')).toEqual({ name: 'top-k', k: 1 });
    expect(parseRouterSpec('top-p:p=0.4')).toEqual({ name: 'top-p', p: 0.4 });
    expect(createRouter(parseRouterSpec('threshold:t=0.9,capacity=1.0')).spec).toEqual({ name: 'threshold', t: 0.9, capacity: 1 });
    expect(createRouter(parseRouterSpec('random-drop:q=0.1,seed=1')).spec).toEqual({ name: 'random-drop', q: 0.1, seed: 1 });
    expect(createRouter(parseRouterSpec('expert-choice')).spec).toEqual({ name: 'expert-choice', capacity: 2 });
    expect(createRouter(parseRouterSpec('expert-choice:capacity=2')).causal).toBe(false);
    expect(createRouter(parseRouterSpec('null-experts:k=3,m=8')).spec).toEqual({ name: 'null-experts', k: 3, m: 8, mapping: 'zero' });
    expect(createRouter(parseRouterSpec('null-experts:k=3,m=8,mapping=identity')).spec['mapping']).toBe('identity');
    expect(createRouter(parseRouterSpec('ternary:k=2')).spec).toEqual({ name: 'ternary', k: 2, zero: 2 });
    expect(createRouter({ name: 'ternary', k: 2, zero: 3 }).layoutFor(8).rows).toBe(19);
  });

  it('bad specs are one-line errors listing the valid names and keys', () => {
    const oneLine = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        const msg = (e as Error).message;
        expect(msg.includes('\n')).toBe(false);
        return msg;
      }
      throw new Error('expected an error');
    };
    expect(oneLine(() => parseRouterSpec('top-q:p=1'))).toBe(`unknown router 'top-q' (valid: ${routerUsage()})`);
    expect(routerUsage()).toContain('threshold:t,capacity');
    expect(oneLine(() => parseRouterSpec('top-p:q=0.4'))).toBe("router 'top-p': unknown key 'q' (valid keys: p)");
    expect(oneLine(() => parseRouterSpec('top-p'))).toBe("router 'top-p': missing key 'p' (keys: p)");
    expect(oneLine(() => parseRouterSpec('top-p:p=2'))).toBe('router top-p: p must be a number in [0, 1], got 2');
    expect(oneLine(() => parseRouterSpec('top-k:k=1.5'))).toBe('router top-k: k must be a positive integer, got 1.5');
    expect(oneLine(() => parseRouterSpec('top-k:k'))).toContain("expected key=value, got 'k'");
    expect(oneLine(() => parseRouterSpec('null-experts:k=3,m=8,mapping=one'))).toBe("router null-experts: mapping must be 'zero' or 'identity', got 'one'");
    expect(oneLine(() => parseRouterSpec('threshold:capacity=0'))).toBe('router threshold: capacity must be a positive number, got 0');
    expect(oneLine(() => parseRouterSpec('threshold:t=high'))).toBe("router 'threshold': key 't' must be a number, got 'high'");
  });
});

describe('routers on a model', () => {
  const ids = new Tensor(Int32Array.from([3, 17, 42, 5, 9, 61, 2, 30]), [1, 8]);
  const loads = (model: ReturnType<typeof tinyModel>): number[] => withScope(() => noGrad(() => {
    const ctx = new ForwardContext(false);
    model.forward(ids, { ctx });
    return ctx.routing.map((r) => r.routing.stats.trueExpertsPerToken);
  }));

  it('setRouter swaps the router of every MoE layer of a top-2 Mixtral (post-hoc top-p, paper 003)', () => {
    const model = tinyModel(tinyMixtralConfig({ num_local_experts: 4 }));
    expect(loads(model)).toEqual([2, 2]);
    model.setRouter(createRouter({ name: 'top-k', k: 1 }));
    expect(loads(model)).toEqual([1, 1]);
    model.setRouter(createRouter(parseRouterSpec('top-p:p=0.99')));
    expect(loads(model).every((l) => l > 2)).toBe(true);
    for (const b of model.moeBlocks()) expect(b.router.spec).toEqual({ name: 'top-p', p: 0.99 });
  });

  it('a router that reads other rows is refused with the layer and row counts', () => {
    const model = tinyModel(tinyMixtralConfig());
    expect(() => model.setRouter(createRouter({ name: 'null-experts', k: 3, m: 4 }))).toThrow(
      "router 'null-experts' reads 8 router rows for 4 experts, but layer 0 has 4 (gate 4)",
    );
  });

  it('configs with null experts or ternary rows get their routers by default', () => {
    const adamoe = tinyModel(tinyMixtralConfig({ moe_tune: { null_experts: { m: 4, top_k: 3 } } }));
    expect(adamoe.moeBlocks()[0]!.router.spec).toEqual({ name: 'null-experts', k: 3, m: 4, mapping: 'zero' });
    expect(loads(adamoe).every((l) => l >= 0 && l <= 3)).toBe(true);
    const tc = tinyModel(tinyMixtralConfig({ moe_tune: { ternary: { zero_experts: 2 } } }));
    expect(tc.moeBlocks()[0]!.router.spec).toEqual({ name: 'ternary', k: 2, zero: 2 });
    expect(loads(tc).every((l) => l >= 0 && l <= 2)).toBe(true);
  });
});
