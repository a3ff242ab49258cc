/**
 * Routing statistics over many forward passes (an evaluation over a dataset): per MoE layer,
 * tokens per expert, true experts per token and their histogram, dropped assignments and bypassed
 * tokens; overall `load` (AdaMoE "Load", TC-MoE "Avg K": the mean number of true, FLOP-costing
 * experts per token over all MoE layers and all scored positions); and FLOPs against plain top-k,
 * for the MoE layers (XMoE paper 001 eq. 6: capacity-bound, padding included, when the router has
 * a capacity) and for the whole model (paper 000 "#FLOPs", paper 004 "%FLOPs").
 *
 *   const acc = new RouterStatsAccumulator();
 *   for (const batch of data) { ...forward with ctx...; acc.add(ctx.routing, scoredPositions(targets)); }
 *   const summary = acc.summary(dims);   // JSON.stringify(summary) or summary.toJSON()
 *
 * Positions that are not scored (the last token of each sequence, padding) are left out by the
 * mask given to add(). The capacity-bound MoE-layer FLOPs are the exception: an expert's buffer of
 * C slots is paid for the whole batch, so they count every routed position.
 */
import { rowToExpert } from './build-routing.js';
import type { RoutingRecord } from './router.js';

/**
 * Model dimensions for the whole-model FLOPs (plain numbers: routers do not import models; the
 * caller maps its model config onto this).
 */
export interface ModelFlopDims {
  hiddenSize: number;
  numLayers: number;
  vocabSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** FFN width of the dense (non-MoE) layers. */
  intermediateSize: number;
  /** Hidden width of each expert (SwiGLU: w1, w3 [F, D], w2 [D, F]). */
  expertIntermediateSize: number;
  /** Decoder layers whose FFN is a MoE block. */
  moeLayers: readonly number[];
  /** Experts per MoE layer of the top-k baseline. */
  numExperts: number;
  /** k of the plain top-k baseline (e.g. Mixtral's num_experts_per_tok = 2). */
  topK: number;
  /**
   * Mean number of positions each token attends to, for the attention-score FLOPs
   * (2 * 2 * heads * headDim per position); 0 or absent: not counted.
   */
  contextLength?: number;
  /**
   * Attention of a family that is not grouped-query attention (DeepSeek's multi-head latent attention):
   * its projection FLOPs per token, and its score FLOPs per attended position (q.k and p.v over every
   * head). Absent: GQA from numHeads / numKvHeads / headDim.
   */
  attention?: { projectionFlops: number; flopsPerPosition: number };
  /** Width of the shared expert MLP every token runs in a MoE layer (0 or absent: none), and whether a sigmoid gate [1, D] scales it. */
  sharedExpertIntermediateSize?: number;
  sharedExpertGated?: boolean;
}

interface LayerAccumulator {
  layer: number;
  module: string;
  numExperts: number;
  routerRows: number;
  forwardPasses: number;
  scoredTokens: number;
  pairs: number;
  selected: number;
  dropped: number;
  bypassed: number;
  tokensPerExpert: Float64Array;
  /** histogram[n] = scored tokens that ran n true experts. */
  histogram: number[];
  /** Capacity-bound work: sum over batches of N * C, and of T (all routed positions). */
  capacityBatches: number;
  paddedSlots: number;
  capacityTokens: number;
  capacityMin: number;
  capacityMax: number;
}

export interface LayerStatsJson {
  layer: number;
  module: string;
  numExperts: number;
  routerRows: number;
  forwardPasses: number;
  scoredTokens: number;
  /** Mean true experts per scored token in this layer. */
  load: number;
  tokensPerExpert: number[];
  /** expertsPerTokenHistogram[n] = scored tokens that ran n true experts. */
  expertsPerTokenHistogram: number[];
  selectedAssignments: number;
  droppedAssignments: number;
  droppedRate: number;
  bypassedTokens: number;
  capacity: { min: number; max: number } | null;
  /**
   * Expert passes per token that the MoE layer pays for: N * C / T with a capacity (padding
   * included, paper 001 eq. 6), else the load.
   */
  expertPassesPerToken: number;
}

export interface FlopsJson {
  baselineTopK: number;
  /** MoE-layer expert FLOPs against plain top-k (ratio = ours / top-k; reduction = 1 - ratio). */
  moeLayer: { ratio: number; reduction: number };
  /** Whole-model forward FLOPs per token (2 per multiply-add) against the same model with top-k. */
  model: { perToken: number; baselinePerToken: number; ratio: number; reduction: number };
}

export interface RouterStatsJson {
  forwardPasses: number;
  /** Scored positions per MoE layer (every layer sees the same positions). */
  scoredTokens: number;
  /** Mean number of true (FLOP-costing) experts per token over all MoE layers and scored positions. */
  load: number;
  /** Dropped (token, expert) assignments / selected ones, over all layers. */
  droppedRate: number;
  /** Fraction of (layer, scored token) that ran no true expert (bypassed the layer). */
  bypassRate: number;
  layers: LayerStatsJson[];
  flops: FlopsJson | null;
}

/** The summary of an accumulator: plain data, `toJSON()` for `--json`. */
export class RouterStatsSummary implements RouterStatsJson {
  readonly forwardPasses: number;
  readonly scoredTokens: number;
  readonly load: number;
  readonly droppedRate: number;
  readonly bypassRate: number;
  readonly layers: LayerStatsJson[];
  readonly flops: FlopsJson | null;

  constructor(data: RouterStatsJson) {
    this.forwardPasses = data.forwardPasses;
    this.scoredTokens = data.scoredTokens;
    this.load = data.load;
    this.droppedRate = data.droppedRate;
    this.bypassRate = data.bypassRate;
    this.layers = data.layers;
    this.flops = data.flops;
  }

  toJSON(): RouterStatsJson {
    return {
      forwardPasses: this.forwardPasses,
      scoredTokens: this.scoredTokens,
      load: this.load,
      droppedRate: this.droppedRate,
      bypassRate: this.bypassRate,
      layers: this.layers.map((l) => ({ ...l, tokensPerExpert: [...l.tokensPerExpert], expertsPerTokenHistogram: [...l.expertsPerTokenHistogram] })),
      flops: this.flops,
    };
  }
}

/**
 * The scored positions of next-token targets ([B*T], IGNORE_INDEX where nothing is predicted):
 * 1 where the target is a token.
 */
export function scoredPositions(targets: ArrayLike<number>, ignoreIndex = -100): Uint8Array {
  const out = new Uint8Array(targets.length);
  for (let i = 0; i < targets.length; i++) out[i] = targets[i] === ignoreIndex ? 0 : 1;
  return out;
}

const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);

export interface RouterStatsOptions {
  /**
   * Which records count (default: all). E.g. only the MoE blocks when Mo-LoRA linears also route:
   * `(r) => r.module.endsWith('block_sparse_moe')`.
   */
  include?: (record: RoutingRecord) => boolean;
}

export class RouterStatsAccumulator {
  private layers = new Map<string, LayerAccumulator>();
  private passes = 0;

  constructor(private readonly opts: RouterStatsOptions = {}) {}

  /**
   * Adds the routing records of one forward pass (all MoE layers). `scored` [T] (1/true = scored)
   * leaves positions out of every statistic but the capacity-bound FLOPs; default: all scored.
   */
  add(records: readonly RoutingRecord[], scored?: ArrayLike<number | boolean>): void {
    this.passes++;
    for (const rec of records) if (!this.opts.include || this.opts.include(rec)) this.addRecord(rec, scored);
  }

  private addRecord(rec: RoutingRecord, scored?: ArrayLike<number | boolean>): void {
    const r = rec.routing;
    const T = r.numTokens;
    const N = r.numExperts;
    const R = r.layout.rows;
    if (scored && scored.length !== T) {
      throw new Error(`RouterStatsAccumulator.add: the scored-positions mask has ${scored.length} entries but layer ${rec.layer} (${rec.module || 'MoE'}) routed ${T} tokens`);
    }
    const key = rec.module || `layer ${rec.layer}`;
    let acc = this.layers.get(key);
    if (!acc) {
      acc = {
        layer: rec.layer, module: rec.module, numExperts: N, routerRows: R, forwardPasses: 0, scoredTokens: 0, pairs: 0,
        selected: 0, dropped: 0, bypassed: 0, tokensPerExpert: new Float64Array(N), histogram: [], capacityBatches: 0,
        paddedSlots: 0, capacityTokens: 0, capacityMin: Infinity, capacityMax: -Infinity,
      };
      this.layers.set(key, acc);
    }
    if (acc.numExperts !== N) throw new Error(`RouterStatsAccumulator.add: ${key} had ${acc.numExperts} experts, now ${N}`);
    acc.forwardPasses++;
    acc.routerRows = R;
    const isScored = (t: number): boolean => !scored || Boolean(scored[t]);
    // FLOP-costing pairs per token
    const pairsOf = new Int32Array(T);
    const off = r.expertOffsets;
    for (let e = 0; e < N; e++) {
      for (let p = off[e]!; p < off[e + 1]!; p++) {
        const t = r.tokens[p]!;
        pairsOf[t]!++;
        if (isScored(t)) acc.tokensPerExpert[e]! += 1;
      }
    }
    // distinct true experts selected per token (before drops): E_i^1 and E_i^-1 are one expert
    const mark = new Int32Array(N).fill(-1);
    for (let t = 0; t < T; t++) {
      if (!isScored(t)) continue;
      let sel = 0;
      for (let row = 0; row < R; row++) {
        if (!r.selected[t * R + row]) continue;
        const { expert } = rowToExpert(row, r.layout);
        if (expert >= 0 && mark[expert] !== t) {
          mark[expert] = t;
          sel++;
        }
      }
      const n = pairsOf[t]!;
      acc.scoredTokens++;
      acc.pairs += n;
      // a router with no selection record for a pair (none today) still counts it as selected
      acc.selected += Math.max(sel, n);
      acc.dropped += Math.max(0, sel - n);
      if (n === 0) acc.bypassed++;
      while (acc.histogram.length <= n) acc.histogram.push(0);
      acc.histogram[n]!++;
    }
    const C = r.stats.capacity;
    if (C !== null && C !== undefined) {
      acc.capacityBatches++;
      acc.paddedSlots += N * C;
      acc.capacityTokens += T;
      acc.capacityMin = Math.min(acc.capacityMin, C);
      acc.capacityMax = Math.max(acc.capacityMax, C);
    }
  }

  /** Forward passes added so far. */
  get forwardPasses(): number {
    return this.passes;
  }

  /** The statistics so far; with `dims`, FLOPs against plain top-k too. */
  summary(dims?: ModelFlopDims): RouterStatsSummary {
    const layers = [...this.layers.values()].sort((a, b) => a.layer - b.layer || a.module.localeCompare(b.module));
    const json: LayerStatsJson[] = layers.map((a) => {
      const load = div(a.pairs, a.scoredTokens);
      // padding-inclusive work applies when every batch of this layer had a capacity
      const capacityBound = a.capacityBatches > 0 && a.capacityBatches === a.forwardPasses;
      return {
        layer: a.layer,
        module: a.module,
        numExperts: a.numExperts,
        routerRows: a.routerRows,
        forwardPasses: a.forwardPasses,
        scoredTokens: a.scoredTokens,
        load,
        tokensPerExpert: Array.from(a.tokensPerExpert),
        expertsPerTokenHistogram: [...a.histogram],
        selectedAssignments: a.selected,
        droppedAssignments: a.dropped,
        droppedRate: div(a.dropped, a.selected),
        bypassedTokens: a.bypassed,
        capacity: a.capacityBatches > 0 ? { min: a.capacityMin, max: a.capacityMax } : null,
        expertPassesPerToken: capacityBound ? div(a.paddedSlots, a.capacityTokens) : load,
      };
    });
    let pairs = 0;
    let tokens = 0;
    let selected = 0;
    let dropped = 0;
    let bypassed = 0;
    for (const a of layers) {
      pairs += a.pairs;
      tokens += a.scoredTokens;
      selected += a.selected;
      dropped += a.dropped;
      bypassed += a.bypassed;
    }
    return new RouterStatsSummary({
      forwardPasses: this.passes,
      scoredTokens: layers.length > 0 ? Math.max(...layers.map((a) => a.scoredTokens)) : 0,
      load: div(pairs, tokens),
      droppedRate: div(dropped, selected),
      bypassRate: div(bypassed, tokens),
      layers: json,
      flops: dims ? flopsAgainstTopK(json, dims) : null,
    });
  }
}

/**
 * Expert FLOPs of the MoE layers (eq. 6 of paper 001: proportional to the expert passes) and
 * forward FLOPs per token of the whole model (2 per multiply-add: attention projections, optional
 * attention scores, dense FFNs, routers, experts, LM head; norms and embeddings are left out), each
 * against the same model with plain top-k routing.
 */
export function flopsAgainstTopK(layers: readonly LayerStatsJson[], dims: ModelFlopDims): FlopsJson {
  const D = dims.hiddenSize;
  const k = dims.topK;
  if (!(k > 0)) throw new Error(`router stats: dims.topK must be positive, got ${k}`);
  const moeSet = new Set(dims.moeLayers);
  const seen = layers.filter((l) => moeSet.has(l.layer));
  const meanPasses = seen.length > 0 ? seen.reduce((s, l) => s + l.expertPassesPerToken, 0) / seen.length : k;
  const expertFlops = 2 * 3 * D * dims.expertIntermediateSize;
  const attn = dims.attention
    ? dims.attention.projectionFlops + dims.attention.flopsPerPosition * (dims.contextLength ?? 0)
    : 2 * D * dims.numHeads * dims.headDim * 2 + 2 * 2 * D * dims.numKvHeads * dims.headDim
      + 2 * 2 * dims.numHeads * dims.headDim * (dims.contextLength ?? 0);
  // a shared expert runs for every token in both the routed model and the top-k baseline
  const sharedFfn = dims.sharedExpertIntermediateSize ? 2 * 3 * D * dims.sharedExpertIntermediateSize + (dims.sharedExpertGated ? 2 * D : 0) : 0;
  const denseFfn = 2 * 3 * D * dims.intermediateSize;
  let ours = 2 * D * dims.vocabSize;
  let base = ours;
  for (let l = 0; l < dims.numLayers; l++) {
    ours += attn;
    base += attn;
    if (!moeSet.has(l)) {
      ours += denseFfn;
      base += denseFfn;
      continue;
    }
    const recs = seen.filter((s) => s.layer === l);
    const passes = recs.length > 0 ? recs.reduce((s, r) => s + r.expertPassesPerToken, 0) / recs.length : meanPasses;
    const rows = recs.length > 0 ? recs[0]!.routerRows : dims.numExperts;
    ours += 2 * D * rows + passes * expertFlops + sharedFfn;
    base += 2 * D * dims.numExperts + k * expertFlops + sharedFfn;
  }
  const moeRatio = meanPasses / k;
  return {
    baselineTopK: k,
    moeLayer: { ratio: moeRatio, reduction: 1 - moeRatio },
    model: { perToken: ours, baselinePerToken: base, ratio: ours / base, reduction: 1 - ours / base },
  };
}
