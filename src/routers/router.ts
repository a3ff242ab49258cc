/**
 * The router interface. A router turns router logits [T, R] into the (token, true expert) pairs
 * that cost FLOPs, with their gate values as a tensor (so gradients reach the router), grouped by
 * expert. The MoE layer never branches on the router's name: null experts, zero experts, dropped
 * assignments and ternary signs are all folded into the pairs and gates here.
 */
import type { Rng, Tensor } from '../tensor/index.js';

/** A router as named on the command line and saved in configs: {name, ...params}. */
export interface RouterSpec {
  name: string;
  [key: string]: string | number | boolean;
}

export interface RouteContext {
  training: boolean;
  rng: Rng;
  /** Decoder layer index (for statistics and per-layer seeds). */
  layer: number;
  /**
   * A per-row bias the layer adds to the scores for choosing experts only, never to the gates
   * (DeepSeek-V3's `e_score_correction_bias`, read by the group-top-k router); routers that do not
   * use one ignore it.
   */
  selectionBias?: Float32Array | null;
}

/** Statistics of one routing decision (one MoE layer, one batch). */
export interface RoutingStats {
  tokens: number;
  /** FLOP-costing (token, true expert) pairs per expert [N]. */
  tokensPerExpert: Int32Array;
  /** Mean number of FLOP-costing experts per token (AdaMoE "Load", TC-MoE "Avg K"). */
  trueExpertsPerToken: number;
  /** (token, true expert) selections removed by capacity limits or random drop. */
  droppedAssignments: number;
  /**
   * (token, true expert) selections the router made before dropping: a token that picks both
   * E_i^1 and E_i^-1 counts once, as it costs one pass through E_i.
   */
  selectedAssignments: number;
  /** Tokens that reached no true expert (output 0 from the MoE layer). */
  bypassedTokens: number;
  /** Expert capacity per expert when the router has one (padding-inclusive FLOPs, XMoE eq. 6). */
  capacity: number | null;
}

/** A router's decision for one batch of tokens. */
export interface Routing {
  numTokens: number;
  numExperts: number;
  /** Token index of each FLOP-costing pair, grouped by expert (expert e owns [offsets[e], offsets[e+1])). */
  tokens: Int32Array;
  expertOffsets: Int32Array;
  /** Combine weight of each pair [P] (with gradient to the router; signs of E^-1 folded in). */
  gates: Tensor;
  /**
   * Weight of the identity mapping per token [T] (AdaMoE null experts with identity mapping):
   * the layer adds identityWeight[t] * x[t]. Null when unused.
   */
  identityWeights: Tensor | null;
  /**
   * TC-MoE: the summed gate of the K zero experts E^0 per token [T] (with gradient; the reward loss
   * of paper 000 eq. 12 reads it). Null for routers without zero experts.
   */
  zeroExpertGates: Tensor | null;
  /** Router logits [T, R] and probabilities [T, R] (softmax over all rows) for the losses. */
  logits: Tensor;
  probs: Tensor;
  /**
   * Row selections before any dropping, [T, R] with 1 where the router selected row r for token t
   * (f_i in the balance losses counts these).
   */
  selected: Uint8Array;
  /** The row of highest probability of each token [T] (ties: lower row), whether or not it was kept (XMoE's top-1 balance loss). */
  top1: Int32Array;
  /** Number of router rows and how they map onto experts. */
  layout: RouterLayout;
  stats: RoutingStats;
}

/** How router rows map to experts: rows [0, N) are the true experts unless said otherwise. */
export interface RouterLayout {
  /** Total router rows R. */
  rows: number;
  /** True (FLOP-costing) experts N. */
  numExperts: number;
  /** AdaMoE null experts (rows N .. N+m-1). */
  nullExperts: number;
  /** TC-MoE: rows N..2N-1 are E^-1, rows 2N..2N+K-1 are zero experts E^0. */
  ternaryZeroExperts: number;
}

export interface Router {
  readonly spec: RouterSpec;
  /** False for routers that look at the whole batch (expert choice): not for causal generation. */
  readonly causal: boolean;
  /** The router rows this router reads for N true experts (N, N + m, 2N + K). */
  layoutFor(numExperts: number): RouterLayout;
  route(logits: Tensor, numExperts: number, ctx: RouteContext): Routing;
}

/** One MoE layer's routing decision in a forward pass (for losses, statistics and reports). */
export interface RoutingRecord {
  /** Decoder layer index. */
  layer: number;
  /** Module path of the MoE block (or Mo-LoRA linear) that routed. */
  module: string;
  routing: Routing;
}

/**
 * A router that draws from its own random streams (random drop) exposes them so that training
 * checkpoints hold them and a resumed run draws the same numbers; routers that draw from the
 * forward context's Rng need nothing.
 */
export interface RandomStateful {
  randomState(): unknown;
  restoreRandomState(state: unknown): void;
}

export function isRandomStateful(x: unknown): x is RandomStateful {
  const r = x as Partial<RandomStateful> | null;
  return typeof r?.randomState === 'function' && typeof r.restoreRandomState === 'function';
}
