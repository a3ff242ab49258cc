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
    for (let s = 0; s < 30; s++) step(s);
    gc();
    const rss0 = process.memoryUsage().rss;
    const pool0 = poolStats().pooledBytes;
    for (let s = 30; s < 200; s++) step(s);
    gc();
    const rssGrowthMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
    const poolGrowth = poolStats().pooledBytes / pool0;
    console.log(`rss growth ${rssGrowthMb.toFixed(1)} MB, pool x${poolGrowth.toFixed(3)} (${(pool0 / 2 ** 20).toFixed(1)} MB)`);
    // new routing patterns can add a few bucket sizes, never a per-step amount
    expect(poolGrowth).toBeLessThan(1.25);
    expect(rssGrowthMb).toBeLessThan(8);
  });
});
