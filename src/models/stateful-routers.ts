/**
 * The routers inside a module tree that draw from their own random streams (random drop), each once, in
 * module order: MoE blocks and Mo-LoRA linears alike (anything with a `router`). Training checkpoints store
 * their states (src/train/trainer.ts) and activation checkpointing replays them (layer-checkpoint.ts).
 */
import { isRandomStateful, type RandomStateful } from '../routers/router.js';
import type { Module } from './module.js';

export function statefulRouters(root: Module): RandomStateful[] {
  const out: RandomStateful[] = [];
  for (const [, m] of root.namedModules()) {
    const r = (m as { router?: unknown }).router;
    if (isRandomStateful(r) && !out.includes(r)) out.push(r);
  }
  return out;
}
