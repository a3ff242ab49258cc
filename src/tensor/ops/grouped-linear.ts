import { gemmGroupedReference, type Backend, type FloatArray } from '../backend.js';
import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

export type Grouped = (transA: boolean, transB: boolean, Ms: Int32Array, Ns: Int32Array, Ks: Int32Array, alpha: number,
  As: readonly FloatArray[], Bs: readonly FloatArray[], beta: number, Cs: readonly FloatArray[]) => void;

/** The backend's grouped GEMM, or one gemm per product where it has none. */
export function groupedKernel(k: Backend): Grouped {
  return k.gemmGrouped ? k.gemmGrouped.bind(k) : (...args) => gemmGroupedReference(k, ...args);
}

/**
 * One linear per group of rows: x [P, K] holds the rows of every group back to back (group g owns
 * rows offsets[g] .. offsets[g+1]), weights[g] is [N, K]; y [P, N] with y_g = x_g W_gᵀ. This is the
 * MoE layer's projection of all experts in one op: one grouped GEMM forward and two backward (dX,
 * and dW of every expert that received rows), with the threads sharing out whole products.
 */
export function groupedLinear(x: Tensor, weights: readonly Tensor[], offsets: Int32Array): Tensor {
  return groupedLinearMany(x, [weights], offsets)[0]!;
}

/**
 * Several grouped linears of the same rows (an expert's w1 and w3): every set of weights gives
 * one output, and each GEMM pass runs all of them in one grouped call (more products for the
 * threads to share out, one dispatch instead of one per set).
 */
export function groupedLinearMany(x: Tensor, sets: readonly (readonly Tensor[])[], offsets: Int32Array): Tensor[] {
  const all = sets.flat();
  assertFloat('groupedLinear', x, ...all);
  if (x.rank !== 2) throw new Error(`groupedLinear: input has shape ${shapeStr(x.shape)}, expected [rows, in]`);
  const [P, K] = x.shape as [number, number];
  const G = sets[0]!.length;
  if (offsets.length !== G + 1 || offsets[0] !== 0 || offsets[G] !== P) {
    throw new Error(`groupedLinear: offsets must start at 0, end at ${P} rows and have ${G + 1} entries`);
  }
  const widths = sets.map((ws) => {
    if (ws.length !== G) throw new Error(`groupedLinear: every weight set needs ${G} weights, got ${ws.length}`);
    const N = ws[0]!.shape[0]!;
    for (const w of ws) {
      if (w.rank !== 2 || w.shape[0] !== N || w.shape[1] !== K) throw new Error(`groupedLinear: weight${w.name ? ` ${w.name}` : ''} has shape ${shapeStr(w.shape)}, expected [${N}, ${K}]`);
    }
    return N;
  });
  const used: number[] = [];
  for (let g = 0; g < G; g++) if (offsets[g + 1]! > offsets[g]!) used.push(g);
  // one product per (set, used group), set-major
  const prodSet = sets.flatMap((_, s) => used.map(() => s));
  const prodGroup = sets.flatMap(() => used);
  const prodW = prodSet.map((s, i) => sets[s]![prodGroup[i]!]!);
  const Ms = Int32Array.from(prodGroup, (g) => offsets[g + 1]! - offsets[g]!);
  const Ns = Int32Array.from(prodSet, (s) => widths[s]!);
  const Ks = new Int32Array(prodSet.length).fill(K);
  const rowsOf = (a: FloatArray, g: number, width: number): FloatArray => a.subarray(offsets[g]! * width, offsets[g + 1]! * width);
  const k = kernelsFor(x, ...all);
  const gemm = groupedKernel(k);
  const ys = widths.map((N) => Tensor.empty([P, N], x.dtype));
  gemm(false, true, Ms, Ns, Ks, 1, prodGroup.map((g) => rowsOf(x.f, g, K)), prodW.map((w) => w.f), 0,
    prodSet.map((s, i) => rowsOf(ys[s]!.f, prodGroup[i]!, widths[s]!)));
  record('groupedLinear', [x, ...prodW], ys, (dys, ctx) => {
    // dX = sum over sets of dy_s W_s (the first set with a gradient writes, the rest add)
    const tx = ctx.target(0);
    if (tx) {
      let beta = tx.beta;
      sets.forEach((_, s) => {
        const dy = dys[s];
        if (!dy) return;
        const idx = prodSet.flatMap((ps, i) => (ps === s ? [i] : []));
        gemm(false, false, Int32Array.from(idx, (i) => Ms[i]!), new Int32Array(idx.length).fill(K), Int32Array.from(idx, () => widths[s]!), 1,
          idx.map((i) => rowsOf(dy.f, prodGroup[i]!, widths[s]!)), idx.map((i) => prodW[i]!.f), beta, idx.map((i) => rowsOf(tx.data, prodGroup[i]!, K)));
        beta = 1;
      });
    }
    // dW (+)= dyᵀ x for every product, one grouped call per beta (fresh or accumulating buffers)
    const targets = prodW.map((_, i) => (dys[prodSet[i]!] ? ctx.target(1 + i) : null));
    for (const beta of [0, 1] as const) {
      const sel = targets.flatMap((t, i) => (t && t.beta === beta ? [i] : []));
      if (sel.length === 0) continue;
      gemm(true, false, Int32Array.from(sel, (i) => Ns[i]!), new Int32Array(sel.length).fill(K), Int32Array.from(sel, (i) => Ms[i]!), 1,
        sel.map((i) => rowsOf(dys[prodSet[i]!]!.f, prodGroup[i]!, Ns[i]!)), sel.map((i) => rowsOf(x.f, prodGroup[i]!, K)), beta,
        sel.map((i) => targets[i]!.data));
    }
  });
  return ys;
}
