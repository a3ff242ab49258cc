/**
 * Activation checkpointing (src/tensor/checkpoint.ts, src/models/layer-checkpoint.ts, train.gradient_checkpointing):
 * with it, losses and every gradient equal the run without it bit for bit, across what makes a layer's forward
 * hard to replay (LoRA dropout and router noise from the forward stream, a router with its own random stream,
 * AdaMoE null experts with the identity mapping, TC-MoE zero experts read by the reward loss, Mo-LoRA routers,
 * DeepSeek-V3's MLA and group-limited routing), with the layer inputs needing gradients (full training) or not
 * (LoRA only); training steps equal; and the step's activation memory (the pool's peak of live bytes) falls.
 */
import { describe, expect, it } from 'vitest';
import { applySurgery, nullExpertsPass, ternaryPass } from '../src/adapters/index.js';
import { createAuxLoss } from '../src/losses/registry.js';
import { applyLora, applyMoLora } from '../src/lora/index.js';
import { nextTokenTargets, IGNORE_INDEX, type CausalLM } from '../src/models/causal-lm.js';
import { createModel } from '../src/models/create.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { createRouter } from '../src/routers/registry.js';
import { isRandomStateful } from '../src/routers/router.js';
import { backward, checkpoint, ops, poolStats, resetPoolPeak, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { tinyDeepseekConfig, tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTinyTrainer, snapshot } from './helpers/train-setup.js';
import { makeTmpDir } from './helpers/tmpdir.js';

interface Case {
  name: string;
  make(): CausalLM;
  aux: string[];
}

const CASES: Case[] = [
  {
    name: 'Mixtral + LoRA (dropout), balance + z-loss',
    make: () => {
      const m = createModel(tinyMixtralConfig({ num_hidden_layers: 3 }), { seed: 3, std: 0.1 });
      applyLora(m, { targets: ['q_proj', 'v_proj', 'w1', 'w2', 'w3'], r: 4, alpha: 8, dropout: 0.2, seed: 1 });
      return m;
    },
    aux: ['balance', 'z-loss'],
  },
  {
    name: 'Mixtral, random-drop router (its own stream), full training',
    make: () => {
      const m = createModel(tinyMixtralConfig({ num_hidden_layers: 3 }), { seed: 4, std: 0.1 });
      m.setRouter(createRouter({ name: 'random-drop', q: 0.5, seed: 9 }));
      return m;
    },
    aux: ['balance'],
  },
  {
    name: 'AdaMoE null experts (identity mapping), adamoe-balance, full training',
    make: () => {
      const m = createModel(tinyMixtralConfig({ num_hidden_layers: 2 }), { seed: 5, std: 0.1 });
      applySurgery(m, [nullExpertsPass({ m: 4, topK: 3, mapping: 'identity' })]);
      return m;
    },
    aux: ['adamoe-balance'],
  },
  {
    name: 'TC-MoE ternary rows, tcmoe-balance + tcmoe-reward, full training',
    make: () => {
      const m = createModel(tinyMixtralConfig({ num_hidden_layers: 2 }), { seed: 6, std: 0.1 });
      applySurgery(m, [ternaryPass({})]);
      return m;
    },
    aux: ['tcmoe-balance', 'tcmoe-reward'],
  },
  {
    name: 'Mo-LoRA (routed LoRA experts with null experts)',
    make: () => {
      const m = createModel(tinyMixtralConfig({ num_hidden_layers: 2 }), { seed: 7, std: 0.1 });
      applyMoLora(m, { targets: ['q_proj', 'v_proj'], experts: 4, topK: 2, nullExperts: 1, r: 4, alpha: 8, dropout: 0.1, seed: 2 });
      return m;
    },
    aux: [],
  },
  {
    name: 'DeepSeek-V3 (MLA, group-top-k, shared expert), full training',
    make: () => createModel(tinyDeepseekConfig(), { seed: 8, std: 0.2 }),
    aux: ['balance'],
  },
];

const idsOf = (B: number, T: number, seed: number): Tensor => {
  const r = new Rng(seed);
  return new Tensor(Int32Array.from({ length: B * T }, () => 3 + r.int(90)), [B, T]);
};

/** Loss and every parameter gradient of one training forward + backward (rng seeded the same each time). */
function lossAndGrads(model: CausalLM, aux: string[], checkpointLayers: boolean): { loss: number; grads: Map<string, number[]> } {
  const params = model.namedParameters().filter(([, p]) => p.requiresGrad);
  zeroGrad(params.map(([, p]) => p));
  const loss = withScope(() => {
    const ids = idsOf(2, 12, 1);
    const ctx = new ForwardContext(true, new Rng(42), 3);
    ctx.checkpointLayers = checkpointLayers;
    let total = ops.crossEntropy(model.forward(ids, { ctx }), nextTokenTargets(ids), { ignoreIndex: IGNORE_INDEX });
    for (const name of aux) {
      const v = createAuxLoss({ name } as never).compute(ctx.routing);
      if (v !== null) total = ops.add(total, ops.scale(v, 0.1));
    }
    const value = total.item();
    backward(total, undefined, { releaseScope: true });
    return value;
  });
  return { loss, grads: new Map(params.map(([n, p]) => [n, p.grad && p.gradValid ? Array.from(p.grad.f) : []])) };
}

describe('activation checkpointing', () => {
  for (const c of CASES) {
    it(`${c.name}: loss and gradients equal without it, bit for bit`, () => {
      const model = c.make();
      // routers with their own random streams start both runs from the same state
      const stateful = model.moeBlocks().map((b) => b.router).filter(isRandomStateful);
      const states = stateful.map((r) => r.randomState());
      const plain = lossAndGrads(model, c.aux, false);
      stateful.forEach((r, i) => r.restoreRandomState(states[i]));
      const ckpt = lossAndGrads(model, c.aux, true);
      // and the recomputation left them where the forward did
      const after = stateful.map((r) => JSON.stringify(r.randomState()));
      stateful.forEach((r, i) => r.restoreRandomState(states[i]));
      lossAndGrads(model, c.aux, false);
      expect(stateful.map((r) => JSON.stringify(r.randomState()))).toEqual(after);
      expect(ckpt.loss).toBe(plain.loss);
      expect([...ckpt.grads.keys()]).toEqual([...plain.grads.keys()]);
      let nonzero = 0;
      for (const [name, g] of plain.grads) {
        expect(ckpt.grads.get(name), name).toEqual(g);
        if (g.some((v) => v !== 0)) nonzero++;
      }
      expect(nonzero).toBeGreaterThan(3);
    });
  }

  it('the checkpoint op: gradients of inputs and parameters through a recomputed segment', () => {
    const w = Tensor.param(Float32Array.from({ length: 12 }, (_, i) => 0.1 * (i - 5)), [3, 4], 'w');
    const run = (useCheckpoint: boolean): { x: number[]; w: number[] } => {
      zeroGrad([w]);
      const x = Tensor.param(Float32Array.from({ length: 8 }, (_, i) => 0.3 * i - 1), [2, 4], 'x');
      withScope(() => {
        const f = (xs: readonly Tensor[]): Tensor[] => [ops.tanh(ops.linear(xs[0]!, w)), ops.sum(ops.square(xs[0]!))];
        const [y, s] = useCheckpoint ? checkpoint(f, [x], [w]) : f([x]);
        backward(ops.add(ops.sum(ops.mul(y!, y!)), s!));
      });
      return { x: Array.from(x.grad!.f), w: Array.from(w.grad!.f) };
    };
    const a = run(false);
    const b = run(true);
    expect(b).toEqual(a);
    expect(a.x.some((v) => v !== 0) && a.w.some((v) => v !== 0)).toBe(true);
    expect(() => checkpoint((xs) => [xs[0]!], [Tensor.param(new Float32Array(2), [2])], [])).toThrow('checkpoint: fn returned one of its inputs');
  });

  it('training steps with train.gradientCheckpointing equal the steps without (LoRA dropout, balance loss, accumulation)', () => {
    const run = (on: boolean): { losses: number[]; params: Map<string, number[]> } => {
      const { trainer, model } = makeTinyTrainer({ runDir: makeTmpDir(`gc-${on}`), steps: 4, lora: true, accum: 2, config: { gradientCheckpointing: on } });
      const losses = [0, 1, 2, 3].map(() => trainer.trainStep().loss);
      return { losses, params: snapshot(model) };
    };
    const off = run(false);
    const on = run(true);
    expect(on.losses).toEqual(off.losses);
    expect(on.params).toEqual(off.params);
  });

  it('keeps one layer of activations instead of all: the pool\'s peak of live bytes falls', () => {
    const model = createModel(tinyMixtralConfig({ num_hidden_layers: 6, hidden_size: 64, intermediate_size: 128 }), { seed: 1, std: 0.05 });
    const peak = (on: boolean): number => {
      resetPoolPeak();
      withScope(() => {
        const ids = idsOf(4, 64, 2);
        const ctx = new ForwardContext(true, new Rng(1));
        ctx.checkpointLayers = on;
        const loss = ops.crossEntropy(model.forward(ids, { ctx }), nextTokenTargets(ids), { ignoreIndex: IGNORE_INDEX });
        backward(loss, undefined, { releaseScope: true });
      });
      return poolStats().peakLiveBytes;
    };
    peak(false); // warm the pool
    const off = peak(false);
    const on = peak(true);
    expect(on).toBeLessThan(off * 0.6);
  });
});
