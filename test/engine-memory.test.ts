/**
 * Memory stays flat over a long run: 200 training steps of a small MoE (whose routing, and so its
 * per-expert buffer sizes, changes every step) leave the process RSS and the buffer pool where they
 * were after warm-up.
 */
import { describe, expect, it } from 'vitest';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { AdamW } from '../src/train/adamw.js';
import { backward, poolStats, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';

describe('memory over 200 training steps', () => {
  it('RSS and the pool stay flat after warm-up', () => {
    const model = tinyModel(tinyMixtralConfig({ hidden_size: 64, intermediate_size: 128, num_local_experts: 8 }), 5, 0.05);
    const params = model.parameters();
    const opt = new AdamW(params, { lr: 3e-3 });
    const rng = new Rng(9);
    const step = (s: number): void => withScope(() => {
      const ids = new Int32Array(4 * 64);
      for (let i = 0; i < ids.length; i++) ids[i] = rng.int(96);
      const x = new Tensor(ids, [4, 64]);
      zeroGrad(params.values());
      backward(model.loss(x, nextTokenTargets(x), new ForwardContext(true, new Rng(s))));
      opt.update();
    });
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with node --expose-gc (vitest.config.ts sets it)');
    const mem = (): { rss: number; live: number } => {
      gc();
      const m = process.memoryUsage();
      // live memory: JS objects plus typed-array storage still referenced after a full collection
      return { rss: m.rss / 2 ** 20, live: (m.heapUsed + m.arrayBuffers) / 2 ** 20 };
    };
    for (let s = 0; s < 30; s++) step(s);
    const m0 = mem();
    const pool0 = poolStats().pooledBytes;
    for (let s = 30; s < 115; s++) step(s);
    const m1 = mem();
    for (let s = 115; s < 200; s++) step(s);
    const m2 = mem();
    const poolGrowth = poolStats().pooledBytes / pool0;
    console.log(`live ${m0.live.toFixed(1)} -> ${m1.live.toFixed(1)} -> ${m2.live.toFixed(1)} MB, rss ${m0.rss.toFixed(1)} -> ${m1.rss.toFixed(1)} -> ${m2.rss.toFixed(1)} MB, pool x${poolGrowth.toFixed(3)} (${(pool0 / 2 ** 20).toFixed(1)} MB)`);
    // new routing patterns can add a few bucket sizes, never a per-step amount
    expect(poolGrowth).toBeLessThan(1.25);
    // live memory after a full collection moves by about 1 MB from run to run (typed-array storage
    // is released lazily); a leak of 24 KB a step would add 4 MB over these 170 steps
    expect(m2.live - m0.live).toBeLessThan(4);
    // RSS: the runtime may commit heap pages once (GC sizing under load), but a second half that
    // grows like the first would be a leak
    expect(m2.rss - m1.rss).toBeLessThan(8);
    expect(m2.rss - m0.rss).toBeLessThan(32);
  });
});
