/**
 * The differentiable op of one projection of all 4-bit experts of an MoE layer: the gathered rows
 * x [P, K] in expert order (rows offsets[e] .. offsets[e + 1] belong to expert e) times each
 * expert's NF4 weight W_e [N, K]: y_e = x_e W_eᵀ, in one grouped call (nf4GemmGrouped: the NF4
 * tiles dequantised into the packed panels, the threads sharing out whole products). Backward:
 * dx_e = dy_e W_e, one grouped call too. The weights are frozen (no gradient), as in nf4Linear.
 */
import { record, shapeStr, Tensor } from '../tensor/index.js';
import { nf4GemmGrouped } from './nf4-gemm.js';
import type { Nf4Weight } from './nf4.js';

export function nf4GroupedLinear(x: Tensor, weights: readonly Nf4Weight[], offsets: Int32Array): Tensor {
  if (x.dtype === 'int32' || x.rank !== 2) throw new Error(`nf4GroupedLinear: input has shape ${shapeStr(x.shape)} (${x.dtype}), expected float [rows, in]`);
  const [P, K] = x.shape as [number, number];
  const G = weights.length;
  if (G === 0 || offsets.length !== G + 1 || offsets[0] !== 0 || offsets[G] !== P) {
    throw new Error(`nf4GroupedLinear: offsets must start at 0, end at ${P} rows and have ${G + 1} entries`);
  }
  const N = weights[0]!.shape[0]!;
  for (const w of weights) {
    if (w.shape.length !== 2 || w.shape[0] !== N || w.shape[1] !== K) throw new Error(`nf4GroupedLinear: a weight has shape [${w.shape.join(', ')}], expected [${N}, ${K}]`);
  }
  const used: number[] = [];
  for (let g = 0; g < G; g++) if (offsets[g + 1]! > offsets[g]!) used.push(g);
  const Ms = Int32Array.from(used, (g) => offsets[g + 1]! - offsets[g]!);
  const Ws = used.map((g) => weights[g]!);
  const rows = (a: Tensor['f'], g: number, width: number): Tensor['f'] => a.subarray(offsets[g]! * width, offsets[g + 1]! * width);
  const y = Tensor.empty([P, N], x.dtype);
  nf4GemmGrouped(true, Ms, N, K, used.map((g) => rows(x.f, g, K)), Ws, 0, used.map((g) => rows(y.f, g, N)));
  record('nf4GroupedLinear', [x], [y], ([dy], ctx) => {
    const tx = ctx.target(0);
    if (!dy || !tx) return;
    nf4GemmGrouped(false, Ms, N, K, used.map((g) => rows(dy.f, g, N)), Ws, tx.beta, used.map((g) => rows(tx.data, g, K)));
  });
  return y;
}
