/**
 * Choosing the next token from one row of logits: greedy (temperature 0), or sampling from
 * softmax(logits / temperature) restricted to the top-p nucleus (the smallest set of most likely
 * tokens whose probabilities sum to at least p; at least one token), with a seeded Rng.
 */
import type { Rng } from '../tensor/index.js';

export interface SamplingOptions {
  /** 0 (or less) picks the most likely token. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps every token. */
  topP: number;
}

export function checkSamplingOptions(o: SamplingOptions): void {
  if (!Number.isFinite(o.temperature) || o.temperature < 0) throw new Error(`temperature must be a number >= 0, got ${o.temperature}`);
  if (!Number.isFinite(o.topP) || o.topP <= 0 || o.topP > 1) throw new Error(`top-p must be in (0, 1], got ${o.topP}`);
}

/** Index of the largest logit (the lowest index on ties). */
export function argmaxRow(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** The nucleus of probabilities `probs` (descending order of probability), as token indices. */
export function nucleus(probs: Float64Array, topP: number): number[] {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  if (topP >= 1) return order;
  const kept: number[] = [];
  let mass = 0;
  for (const i of order) {
    kept.push(i);
    mass += probs[i]!;
    if (mass >= topP) break;
  }
  return kept;
}

export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng): number {
  if (opts.temperature <= 0) return argmaxRow(logits);
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(V);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const p = Math.exp((logits[i]! - max) / opts.temperature);
    probs[i] = p;
    sum += p;
  }
  for (let i = 0; i < V; i++) probs[i]! /= sum;
  const kept = nucleus(probs, opts.topP);
  let keptMass = 0;
  for (const i of kept) keptMass += probs[i]!;
  let u = rng.next() * keptMass;
  for (const i of kept) {
    u -= probs[i]!;
    if (u < 0) return i;
  }
  return kept[kept.length - 1]!;
}
