/**
 * A 2-layer tiny transformer built from the ops trains: its loss falls on a repeated batch, the
 * same seed gives bit-identical losses on the same backend, and a warm training step allocates no
 * new pooled memory.
 */
import { describe, expect, it } from 'vitest';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { AdamW } from '../src/train/adamw.js';
import { backward, poolStats, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { tinyMixtralConfig, tinyLlamaConfig, tinyModel } from './helpers/tiny-model.js';

function batch(seed: number, B: number, T: number, V: number): Tensor {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(V);
  return new Tensor(ids, [B, T]);
}

function trainLosses(config: Record<string, unknown>, steps: number): number[] {
  const model = tinyModel(config, 3, 0.02);
  const params = model.parameters();
  const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.01 });
  const ids = batch(5, 2, 24, config['vocab_size'] as number);
  const targets = nextTokenTargets(ids);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    losses.push(withScope(() => {
      zeroGrad(params.values());
      const loss = model.loss(ids, targets, new ForwardContext(true, new Rng(s)));
      backward(loss);
      opt.update();
      return loss.item();
    }));
  }
  return losses;
}

describe('a tiny transformer trains on the engine', () => {
  it('MoE: loss falls on a repeated batch, deterministic to the last bit', () => {
    const a = trainLosses(tinyMixtralConfig(), 30);
    expect(a[29]!).toBeLessThan(a[0]! * 0.5);
    const b = trainLosses(tinyMixtralConfig(), 30);
    expect(b).toEqual(a);
  });

  it('dense: loss falls on a repeated batch', () => {
    const a = trainLosses(tinyLlamaConfig(), 30);
    expect(a[29]!).toBeLessThan(a[0]! * 0.5);
  });

  it('a warm training step takes all its buffers from the pool', () => {
    // lr 0 keeps the routing (and so every buffer size) identical from step to step
    const model = tinyModel(tinyMixtralConfig(), 3, 0.02);
    const params = model.parameters();
    const opt = new AdamW(params, { lr: 0 });
    const ids = batch(6, 2, 16, 96);
    const targets = nextTokenTargets(ids);
    const step = (): void => withScope(() => {
      zeroGrad(params.values());
      backward(model.loss(ids, targets, new ForwardContext(true)));
      opt.update();
    });
    for (let i = 0; i < 3; i++) step();
    const before = poolStats().pooledBytes;
    for (let i = 0; i < 5; i++) step();
    expect(poolStats().pooledBytes).toBe(before);
  });
});
