/** The trainer settings of a recipe (src/train TrainerConfig), for one seed and step count. */
import * as path from 'node:path';
import type { TrainerConfig } from '../train/trainer.js';
import type { Recipe } from './schema.js';

export function trainerConfigOf(r: Recipe, steps: number, seed: number): TrainerConfig {
  const t = r.train;
  const o = r.optimizer;
  const s = r.lr_schedule;
  return {
    steps,
    gradAccumSteps: t.grad_accum,
    lr: t.lr,
    ...(s.warmup_steps !== undefined ? { warmupSteps: Math.min(s.warmup_steps, steps) } : {}),
    warmupRatio: s.warmup_ratio,
    minLrRatio: s.min_lr_ratio,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weight_decay,
    clipGradNorm: o.clip_grad_norm,
    trainable: t.trainable,
    ...(t.frozen ? { frozen: t.frozen } : {}),
    evalEvery: r.eval.every,
    checkpointEvery: t.checkpoint_every,
    gradientCheckpointing: t.gradient_checkpointing,
    keepCheckpoints: t.keep_checkpoints,
    seed,
  };
}

/** Optimizer steps of a fine-tuning run: train.steps, or epochs over the packed data. */
export function stepsOf(r: Recipe, sequences: number): number {
  if (r.train.steps != null) return r.train.steps;
  const perEpoch = Math.floor(sequences / r.train.batch_size / r.train.grad_accum);
  return Math.max(1, Math.ceil((r.train.epochs ?? 1) * perEpoch));
}

/** The run directory of one seed: RUN_DIR itself for a single seed, else RUN_DIR/seed-S. */
export function seedRunDir(runDir: string, seeds: readonly number[], seed: number): string {
  return seeds.length === 1 ? runDir : path.join(runDir, `seed-${seed}`);
}
