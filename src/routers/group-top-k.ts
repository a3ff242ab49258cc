/**
 * DeepSeek-V3's routing rule (DeepSeek-V3 technical report, arXiv 2412.19437, §2.1.2 eqs. 13-16 and
 * "node-limited routing"; transformers' DeepseekV3TopkRouter), also Kimi-K2's:
 *
 *   s_i   = sigmoid(u^T e_i)                                         (eq. 15, in float32)
 *   c_i   = s_i + b_i      b: e_score_correction_bias, for choosing only (eq. 16, auxiliary-loss-free balancing)
 *   group score G_g = sum of the 2 largest c_i of group g  (N experts in `groups` equal groups)
 *   keep the `group_k` best groups; choose the k largest c_i among their experts
 *   g'_i  = s_i for a chosen i                                      (eq. 13)
 *   g_i   = g'_i / (sum_chosen g' + 1e-20)   when renormalize (norm_topk_prob; eq. 14)
 * The routed scaling factor multiplies the MoE block's routed output (SparseMoeBlock.gateScale), as the
 * weights' product routed_scaling_factor * g_i does in transformers.
 *
 * The bias b comes from the MoE layer (RouteContext.selectionBias, the checkpoint's
 * `gate.e_score_correction_bias`); without one it is 0. Gates take gradient through s (b has none: the
 * report updates it by a rule, not by gradient). `probs` (what the balance losses read) are the
 * normalised scores s_i / sum_j s_j, as the report's complementary sequence-wise loss uses (eqs. 18-20).
 * Ties go to the lower group / expert index (torch.topk leaves them unspecified).
 */
import { ops, Tensor } from '../tensor/index.js';
import { buildRouting } from './build-routing.js';
import type { RouteContext, Router, RouterLayout, Routing, RouterSpec } from './router.js';
import { plainLayout } from './top-k.js';

const f = Math.fround;

export class GroupTopKRouter implements Router {
  readonly causal = true;
  readonly spec: RouterSpec;

  constructor(readonly k: number, readonly groups = 1, readonly groupK = 1, readonly renormalize = true) {
    for (const [key, v] of [['k', k], ['groups', groups], ['group_k', groupK]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`router group-top-k: ${key} must be a positive integer, got ${v}`);
    }
    if (typeof renormalize !== 'boolean') throw new Error(`router group-top-k: renormalize must be true or false, got '${String(renormalize)}'`);
    if (groupK > groups) throw new Error(`router group-top-k: group_k ${groupK} is more than groups ${groups}`);
    this.spec = { name: 'group-top-k', k, groups, group_k: groupK, renormalize };
  }

  layoutFor(numExperts: number): RouterLayout {
    return plainLayout(numExperts);
  }

  /** Checks that N experts split into the groups and that the kept groups hold k experts. */
  checkExperts(N: number): void {
    const per = N / this.groups;
    if (!Number.isInteger(per)) throw new Error(`router group-top-k: ${N} experts do not split into ${this.groups} groups`);
    if (this.groups > 1 && per < 2) throw new Error(`router group-top-k: a group's score is its 2 best experts, but ${N} experts in ${this.groups} groups leave ${per} per group`);
    if (this.k > this.groupK * per) throw new Error(`router group-top-k: k ${this.k} is more than the ${this.groupK * per} experts of the ${this.groupK} kept groups`);
  }

  route(logits: Tensor, numExperts: number, ctx: RouteContext): Routing {
    const N = numExperts;
    this.checkExperts(N);
    const layout = this.layoutFor(N);
    const T = logits.shape[0]!;
    const scores = ops.sigmoid(logits);
    const s = scores.f;
    const bias = ctx.selectionBias ?? null;
    if (bias && bias.length !== N) throw new Error(`router group-top-k: layer ${ctx.layer} has a selection bias of ${bias.length} values for ${N} experts`);
    const G = this.groups;
    const per = N / G;
    const k = this.k;
    const slotRows = new Int32Array(T * k);
    const choice = new Float64Array(N);
    const groupScore = new Float64Array(G);
    const keptGroup = new Uint8Array(G);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < N; i++) choice[i] = bias ? f(s[t * N + i]! + bias[i]!) : s[t * N + i]!;
      keptGroup.fill(G === 1 ? 1 : 0);
      if (G > 1) {
        for (let g = 0; g < G; g++) {
          let a = -Infinity;
          let b = -Infinity;
          for (let i = g * per; i < (g + 1) * per; i++) {
            const v = choice[i]!;
            if (v > a) {
              b = a;
              a = v;
            } else if (v > b) b = v;
          }
          groupScore[g] = f(a + b);
        }
        for (const g of bestIndices(groupScore, G, this.groupK)) keptGroup[g] = 1;
      }
      for (let i = 0; i < N; i++) if (!keptGroup[Math.floor(i / per)]) choice[i] = -Infinity;
      bestIndices(choice, N, k).forEach((e, j) => (slotRows[t * k + j] = e));
    }
    const picked = ops.takeAlongRows(scores, new Tensor(slotRows, [T, k]));
    const slotGates = this.renormalize ? ops.div(picked, ops.add(ops.sum(picked, 1, true), Tensor.from([1e-20], [1], picked.dtype))) : picked;
    const probs = ops.div(scores, ops.sum(scores, 1, true));
    return buildRouting({ logits, probs, layout, kmax: k, slotRows, slotGates });
  }
}

/** Indices of the n largest values of v[0..len) in descending order (ties: lower index first). */
function bestIndices(v: Float64Array, len: number, n: number): number[] {
  const out: number[] = [];
  const used = new Uint8Array(len);
  for (let j = 0; j < n; j++) {
    let best = -1;
    for (let i = 0; i < len; i++) if (!used[i] && (best < 0 || v[i]! > v[best]!)) best = i;
    used[best] = 1;
    out.push(best);
  }
  return out;
}
