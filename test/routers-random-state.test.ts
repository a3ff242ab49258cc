/**
 * random-drop draws from its own per-layer streams; its state must round-trip so a resumed
 * training run drops the same experts as an uninterrupted one.
 */
import { describe, expect, it } from 'vitest';
import { createRouter } from '../src/routers/registry.js';
import { isRandomStateful } from '../src/routers/router.js';
import { Rng, Tensor, withScope } from '../src/tensor/index.js';

function logits(seed: number): Tensor {
  const r = new Rng(seed);
  const d = new Float32Array(64 * 8);
  for (let i = 0; i < d.length; i++) d[i] = r.normal();
  return new Tensor(d, [64, 8]);
}

function routeTokens(router: ReturnType<typeof createRouter>, seed: number): number[] {
  return withScope(() => Array.from(router.route(logits(seed), 8, { training: true, rng: new Rng(0), layer: 1 }).tokens));
}

describe('random-drop random state', () => {
  it('restoring the saved state replays the same drops', () => {
    const router = createRouter({ name: 'random-drop', q: 0.5, seed: 3 });
    expect(isRandomStateful(router)).toBe(true);
    if (!isRandomStateful(router)) return;
    routeTokens(router, 1);
    const saved = JSON.parse(JSON.stringify(router.randomState()));
    const a = [routeTokens(router, 2), routeTokens(router, 3)];
    const other = createRouter({ name: 'random-drop', q: 0.5, seed: 3 });
    if (!isRandomStateful(other)) return;
    other.restoreRandomState(saved);
    const b = [routeTokens(other, 2), routeTokens(other, 3)];
    expect(b).toEqual(a);
    // and a fresh router (no restore) draws differently on the same inputs
    const fresh = createRouter({ name: 'random-drop', q: 0.5, seed: 3 });
    expect([routeTokens(fresh, 2), routeTokens(fresh, 3)]).not.toEqual(a);
  });
});
