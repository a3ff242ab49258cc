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

describe('memory over 200 training steps after warm-up', () => {
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
    const mem = (): { rss: number; heap: number; buffers: number } => {
      gc();
      const m = process.memoryUsage();
      // live memory after a full collection: JS objects, and typed-array storage
      return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20, buffers: m.arrayBuffers / 2 ** 20 };
    };
    // warm-up: the pool, V8's heap and the C allocator settle within ~200 steps (measured: RSS
    // steps up once, then stays flat for 1000 steps)
    for (let s = 0; s < 200; s++) step(s);
    const m0 = mem();
    const pool0 = poolStats().pooledBytes;
    // RSS every 10 steps: a leak shows in every window, while native scratch buffers that grow to
    // a new largest GEMM shape (routing changes the shapes) add a one-time step
    const rssWindows: number[] = [];
    let last = m0.rss;
    for (let s = 200; s < 400; s++) {
      step(s);
      if (s % 10 === 9) {
        const r = mem().rss;
        rssWindows.push(r - last);
        last = r;
      }
    }
    const m2 = mem();
    const poolGrowth = poolStats().pooledBytes / pool0;
    const sorted = [...rssWindows].sort((a, b) => a - b);
    const medianWindow = sorted[Math.floor(sorted.length / 2)]!;
    console.log(`heap ${m0.heap.toFixed(1)} -> ${m2.heap.toFixed(1)} MB, buffers ${m0.buffers.toFixed(1)} -> ${m2.buffers.toFixed(1)} MB, rss ${m0.rss.toFixed(1)} -> ${m2.rss.toFixed(1)} MB (median per 10 steps ${medianWindow.toFixed(2)} MB), pool x${poolGrowth.toFixed(3)} (${(pool0 / 2 ** 20).toFixed(1)} MB)`);
    // new routing patterns can add a few bucket sizes, never a per-step amount
    expect(poolGrowth).toBeLessThan(1.25);
    // a leak of 10 KB of JS objects a step would add 2 MB over these 200 steps; typed-array storage
    // swings by ~3 MB between collections (released lazily), so its bound is wider
    expect(m2.heap - m0.heap).toBeLessThan(2);
    expect(m2.buffers - m0.buffers).toBeLessThan(6);
    // RSS flat: a leak of 25 KB a step would make the typical 10-step window grow by 0.25 MB
    expect(medianWindow).toBeLessThan(0.25);
    expect(m2.rss - m0.rss).toBeLessThan(24);
  });
});
