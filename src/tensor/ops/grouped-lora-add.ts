import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import type { FloatArray } from '../backend.js';
import { groupedKernel } from './grouped-linear.js';
import { assertFloat } from './shape-utils.js';

export interface LoraAddOptions {
  /**
   * Add into y's storage and return a tensor over it (no [rows, out] copy). Only for a y no other
   * op reads (a base layer's fresh output, whose own backward does not read it); y then holds z.
   */
  inPlace?: boolean;
}

export interface GroupedLoraAddOptions extends LoraAddOptions {
  /**
   * Computes x's values again into `out` (same shape; e.g. gathering the MoE layer's token rows, or
   * SwiGLU of the saved gate and up): the backward calls it instead of keeping x, so the caller may
   * release x (releaseNow) once its forward readers have run. Costs that computation once in backward.
   */
  xAgain?: (out: FloatArray) => void;
}

/**
 * loraAdd (Hu et al. 2021, h = W0 x + s B A x) for every expert of an MoE projection at once: rows
 * offsets[g] .. offsets[g + 1] of y [P, out] and x [P, in] belong to group g, with its own
 * A_g [r, in] and B_g [out, r]: z_g = y_g + s (x_g A_gᵀ) B_gᵀ. Two grouped GEMMs: t = x Aᵀ into a
 * [P, r] temporary, then s t Bᵀ added onto z with beta 1, so no [P, out] delta or sum is formed
 * (with inPlace, not even the copy of y). Backward per group, as loraAdd: dy = dz,
 * u_g = s dz_g B_g; dx_g += u_g A_g, dA_g += u_gᵀ x_g, dB_g += s dz_gᵀ t_g.
 */
export function groupedLoraAdd(y: Tensor, x: Tensor, as: readonly Tensor[], bs: readonly Tensor[], offsets: Int32Array, s: number,
  opts: GroupedLoraAddOptions = {}): Tensor {
  assertFloat('groupedLoraAdd', y, x, ...as, ...bs);
  if (x.rank !== 2 || y.rank !== 2 || x.shape[0] !== y.shape[0]) {
    throw new Error(`groupedLoraAdd: y ${shapeStr(y.shape)} and x ${shapeStr(x.shape)} must be [rows, out] and [rows, in] with the same rows`);
  }
  const [P, K] = x.shape as [number, number];
  const N = y.shape[1]!;
  const G = as.length;
  if (bs.length !== G || G === 0) throw new Error(`groupedLoraAdd: got ${G} A and ${bs.length} B weights, expected the same number (at least one)`);
  if (offsets.length !== G + 1 || offsets[0] !== 0 || offsets[G] !== P) {
    throw new Error(`groupedLoraAdd: offsets must start at 0, end at ${P} rows and have ${G + 1} entries`);
  }
  const r = as[0]!.shape[0]!;
  for (let g = 0; g < G; g++) {
    const a = as[g]!;
    const b = bs[g]!;
    if (a.rank !== 2 || a.shape[0] !== r || a.shape[1] !== K || b.rank !== 2 || b.shape[0] !== N || b.shape[1] !== r) {
      throw new Error(`groupedLoraAdd: group ${g} has A ${shapeStr(a.shape)}, B ${shapeStr(b.shape)}, expected [${r}, ${K}] and [${N}, ${r}]`);
    }
  }
  const again = opts.xAgain;
  const used: number[] = [];
  for (let g = 0; g < G; g++) if (offsets[g + 1]! > offsets[g]!) used.push(g);
  const U = used.length;
  const A = used.map((g) => as[g]!);
  const B = used.map((g) => bs[g]!);
  const Ms = Int32Array.from(used, (g) => offsets[g + 1]! - offsets[g]!);
  const fill = (v: number): Int32Array => new Int32Array(U).fill(v);
  const rows = (a: FloatArray, width: number): FloatArray[] => used.map((g) => a.subarray(offsets[g]! * width, offsets[g + 1]! * width));
  const k = kernelsFor(y, x, ...A, ...B);
  const gemm = groupedKernel(k);
  const t = Tensor.empty([P, r], x.dtype);
  const tRows = rows(t.f, r);
  gemm(false, true, Ms, fill(r), fill(K), 1, rows(x.f, K), A.map((a) => a.f), 0, tRows);
  let z: Tensor;
  if (opts.inPlace) z = new Tensor(y.data, y.shape);
  else {
    z = Tensor.empty(y.shape, y.dtype);
    z.f.set(y.f);
  }
  gemm(false, true, Ms, fill(N), fill(r), s, tRows, B.map((b) => b.f), 1, rows(z.f, N));
  record('groupedLoraAdd', [y, x, ...A, ...B], [z], ([dz], ctx) => {
    if (!dz) return;
    ctx.pass(0, dz);
    const dzRows = rows(dz.f, N);
    const needA = A.some((_, i) => ctx.needs(2 + i));
    if (ctx.needs(1) || needA) {
      const u = Tensor.empty([P, r], x.dtype);
      const uRows = rows(u.f, r);
      gemm(false, false, Ms, fill(r), fill(N), s, dzRows, B.map((b) => b.f), 0, uRows);
      const tx = ctx.target(1);
      if (tx) gemm(false, false, Ms, fill(K), fill(r), 1, uRows, A.map((a) => a.f), tx.beta, rows(tx.data, K));
      if (needA) {
        // x: kept, or computed again
        let xs = x;
        if (again) {
          xs = Tensor.empty([P, K], x.dtype);
          again(xs.f);
        }
        const xRows = rows(xs.f, K);
        weightGrads(ctx.target, 2, U, (i) => [uRows[i]!, xRows[i]!], r, K, Ms, 1, gemm);
      }
    }
    weightGrads(ctx.target, 2 + U, U, (i) => [dzRows[i]!, tRows[i]!], N, r, Ms, s, gemm);
  });
  return z;
}

/** dW_i (+)= alpha L_iᵀ R_i for every group that needs it, one grouped call per beta. */
function weightGrads(target: (i: number) => { data: FloatArray; beta: 0 | 1 } | null, first: number, U: number,
  operands: (i: number) => [FloatArray, FloatArray], M: number, N: number, Ks: Int32Array, alpha: number,
  gemm: ReturnType<typeof groupedKernel>): void {
  const ts = Array.from({ length: U }, (_, i) => target(first + i));
  for (const beta of [0, 1] as const) {
    const sel = ts.flatMap((t, i) => (t && t.beta === beta ? [i] : []));
    if (sel.length === 0) continue;
    gemm(true, false, new Int32Array(sel.length).fill(M), new Int32Array(sel.length).fill(N), Int32Array.from(sel, (i) => Ks[i]!), alpha,
      sel.map((i) => operands(i)[0]), sel.map((i) => operands(i)[1]), beta, sel.map((i) => ts[i]!.data));
  }
}
