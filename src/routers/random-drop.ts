/**
 * Random drop (paper 000's baseline, §4.1 and A.2): top-2 routing where, with probability q, the
 * expert of second-highest probability is not activated, at inference as well as in training
 * (paper 000 Table 1: q = 15/45/70% gives Avg K 1.85/1.55/1.30). A dropped expert costs nothing.
 *
 * Our choices where the paper is silent: the gates are renormalised over the kept experts (a
 * token that keeps only its top expert gets gate 1); the coin flips come from a seeded stream of
 * this router, one per MoE layer (seeded from `seed` and the layer index), one flip per token in
 * order, so an evaluation is reproducible: `reset()` restarts the streams. Ties go to the lower
 * expert index.
 */
import { ops, Rng, Tensor, topkRows, type RngState } from '../tensor/index.js';
import { buildRouting } from './build-routing.js';
import type { RandomStateful, RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

export class RandomDropRouter implements Router, RandomStateful {
  readonly causal = true;
  readonly spec: RouterSpec;
  private streams = new Map<number, Rng>();

  constructor(readonly q: number, readonly seed = 0) {
    if (typeof q !== 'number' || !Number.isFinite(q) || q < 0 || q > 1) throw new Error(`router random-drop: q must be a number in [0, 1], got ${q}`);
    if (!Number.isInteger(seed)) throw new Error(`router random-drop: seed must be an integer, got ${seed}`);
    this.spec = { name: 'random-drop', q, seed };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  /** The state of every layer's stream (saved in training checkpoints). */
  randomState(): Record<string, RngState> {
    const out: Record<string, RngState> = {};
    for (const [layer, rng] of this.streams) out[String(layer)] = rng.state();
    return out;
  }

  restoreRandomState(state: unknown): void {
    this.streams.clear();
    for (const [layer, st] of Object.entries(state as Record<string, RngState>)) this.streams.set(Number(layer), Rng.fromState(st));
  }

  /** Restarts every layer's random stream (the next evaluation repeats the same drops). */
  reset(): void {
    this.streams.clear();
  }

  private stream(layer: number): Rng {
    let s = this.streams.get(layer);
    if (!s) {
      s = new Rng((Math.imul(this.seed >>> 0, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b)) >>> 0);
      this.streams.set(layer, s);
    }
    return s;
  }

  route(logits: Tensor, numExperts: number, ctx: RouteContext): Routing {
    const layout = this.layoutFor(numExperts);
    const T = logits.shape[0]!;
    const probs = ops.softmax(logits);
    const { indices, k } = topkRows(probs.f, T, layout.rows, 2);
    const kept = new Uint8Array(T * k).fill(1);
    const rng = this.stream(ctx.layer);
    for (let t = 0; t < T; t++) {
      const drop = rng.next() < this.q;
      if (drop && k === 2) kept[t * k + 1] = 0;
    }
    const keptMask = new Tensor(probs.dtype === 'float64' ? Float64Array.from(kept) : Float32Array.from(kept), [T, k]);
    const picked = ops.mul(ops.takeAlongRows(probs, new Tensor(indices, [T, k])), keptMask);
    const slotGates = ops.div(picked, ops.sum(picked, 1, true));
    return buildRouting({ logits, probs, layout, kmax: k, slotRows: indices, slotGates, kept });
  }
}
