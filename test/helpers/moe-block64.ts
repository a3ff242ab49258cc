/**
 * Small float64 MoE blocks (js backend) for gradient checks and hand-worked forward checks.
 */
import { ForwardContext } from '../../src/models/forward-context.js';
import { Linear } from '../../src/models/linear.js';
import { MIXTRAL_NAMES } from '../../src/models/architectures/mixtral.js';
import { GatedMLP } from '../../src/models/mlp.js';
import { Module } from '../../src/models/module.js';
import { SparseMoeBlock } from '../../src/models/moe-block.js';
import type { Router } from '../../src/routers/router.js';
import { Rng, Tensor } from '../../src/tensor/index.js';
import { rand64 } from './gradcheck.js';

export interface Block64 {
  block: SparseMoeBlock;
  /** Router parameters (gate weight, its bias if any, gate2 weight if any). */
  routerParams: Tensor[];
  expertParams: Tensor[];
}

/** A float64 block with N experts (D -> F -> D) whose router has the rows `router` reads. */
export function block64(router: Router, N: number, D: number, F: number, seed = 1, opts: { bias?: number[]; layer?: number; routerStd?: number } = {}): Block64 {
  const rng = new Rng(seed);
  const layout = router.layoutFor(N);
  const gate2Rows = layout.nullExperts;
  const gateRows = layout.rows - gate2Rows;
  const std = opts.routerStd ?? 1;
  const gw = rand64([gateRows, D], rng, { std });
  const gb = opts.bias ? new Tensor(Float64Array.from(opts.bias), [gateRows], true) : null;
  const gate = new Linear(gw, gb);
  const experts: GatedMLP[] = [];
  const expertParams: Tensor[] = [];
  for (let e = 0; e < N; e++) {
    const w1 = rand64([F, D], rng, { std: 0.5 });
    const w2 = rand64([D, F], rng, { std: 0.5 });
    const w3 = rand64([F, D], rng, { std: 0.5 });
    experts.push(new GatedMLP(MIXTRAL_NAMES.expertProj, { gate: new Linear(w1), down: new Linear(w2), up: new Linear(w3) }));
    expertParams.push(w1, w2, w3);
  }
  const block = new SparseMoeBlock(gate, experts, router, opts.layer ?? 0);
  const routerParams = gb ? [gw, gb] : [gw];
  if (gate2Rows > 0) {
    const g2 = rand64([gate2Rows, D], rng, { std });
    block.setGate2(new Linear(g2));
    routerParams.push(g2);
  }
  block.checkRouter();
  return { block, routerParams, expertParams };
}

/** A router "linear" that ignores its input and returns fixed logits rows [lo, hi). */
export class FixedLogits extends Module {
  constructor(private readonly logits: Tensor, private readonly lo: number, private readonly hi: number) {
    super();
  }

  get inFeatures(): number {
    return 0;
  }

  get outFeatures(): number {
    return this.hi - this.lo;
  }

  forward(): Tensor {
    const R = this.logits.shape[1]!;
    const T = this.logits.shape[0]!;
    const out = new Float64Array(T * (this.hi - this.lo));
    for (let t = 0; t < T; t++) for (let r = this.lo; r < this.hi; r++) out[t * (this.hi - this.lo) + r - this.lo] = this.logits.f[t * R + r]!;
    return new Tensor(out, [T, this.hi - this.lo]);
  }
}

export function evalCtx(): ForwardContext {
  return new ForwardContext(false);
}
