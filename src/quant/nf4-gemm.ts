/**
 * The quantised GEMM: a dense matrix times an NF4 weight W [N, K] that is never dequantised as a
 * whole. The reference kernel below dequantises W a tile of rows at a time into a small scratch
 * buffer (at most TILE_ELEMENTS values) and multiplies each tile with the backend's dense GEMM, so
 * it is as fast as the dense path up to the (cheap, O(N K)) dequantisation per call.
 *
 *   transW = true  (forward):         C[M, N] = A[M, K] · W^T + beta * C
 *   transW = false (input gradient):  C[M, K] = A[M, N] · W   + beta * C
 *
 * beta = 0 writes C without reading it. float64 A and C (gradient checks) work on the js backend.
 *
 * Native kernel (same semantics, float32 only): when the active backend has the optional method
 * `nf4Gemm(transW, M, N, K, A, codes, code, blockSize, absmax, qabsmax, nestedAbsmax, nestedCode,
 * nestedBlockSize, offset, beta, C)` (the native backend does: it dequantises straight into the
 * GEMM's packed panels) this function calls it instead of the tile loop (see docs/quantization.md).
 */
import { kernelsFor, type Backend, type FloatArray } from '../tensor/index.js';
import { dequantizeRange, type Nf4Weight } from './nf4.js';

/** Most weight values dequantised at once by default (1 MiB of float32 scratch). */
export const TILE_ELEMENTS = 1 << 18;

let tileElements = TILE_ELEMENTS;

/** Sets the tile size in values (tests force many small tiles); returns the previous one. */
export function setNf4TileElements(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNf4TileElements: expected a positive integer, got ${n}`);
  const prev = tileElements;
  tileElements = n;
  return prev;
}

/** The native kernel's signature (an optional backend method until native/ implements it). */
export type NativeNf4Gemm = (transW: boolean, M: number, N: number, K: number, A: Float32Array,
  codes: Uint8Array, code: Float32Array, blockSize: number,
  absmax: Float32Array | null, qabsmax: Uint8Array | null, nestedAbsmax: Float32Array | null,
  nestedCode: Float32Array | null, nestedBlockSize: number, offset: number,
  beta: number, C: Float32Array) => void;

const scratch32 = { tile: new Float32Array(0), cols: new Float32Array(0) };
const scratch64 = { tile: new Float64Array(0), cols: new Float64Array(0) };

function buffers(f64: boolean, tile: number, cols: number): { tile: FloatArray; cols: FloatArray } {
  if (f64) {
    if (scratch64.tile.length < tile) scratch64.tile = new Float64Array(tile);
    if (scratch64.cols.length < cols) scratch64.cols = new Float64Array(cols);
    return scratch64;
  }
  if (scratch32.tile.length < tile) scratch32.tile = new Float32Array(tile);
  if (scratch32.cols.length < cols) scratch32.cols = new Float32Array(cols);
  return scratch32;
}

/** Rows of W per tile for rows of K values. */
export function tileRows(N: number, K: number): number {
  return Math.max(1, Math.min(N, Math.floor(tileElements / Math.max(1, K))));
}

export function nf4Gemm(transW: boolean, M: number, N: number, K: number, A: FloatArray, W: Nf4Weight,
  beta: number, C: FloatArray): void {
  if (W.shape.length !== 2 || W.shape[0] !== N || W.shape[1] !== K) {
    throw new Error(`nf4Gemm: weight has shape [${W.shape.join(', ')}], expected [${N}, ${K}]`);
  }
  const aLen = transW ? M * K : M * N;
  const cLen = transW ? M * N : M * K;
  if (A.length < aLen || C.length < cLen) throw new Error(`nf4Gemm: A has ${A.length} values (needs ${aLen}), C has ${C.length} (needs ${cLen})`);
  if (M === 0) return;
  const f64 = A instanceof Float64Array;
  const k: Backend & { nf4Gemm?: NativeNf4Gemm } = kernelsFor({ dtype: f64 ? 'float64' : 'float32' });
  if (k.nf4Gemm && !f64 && C instanceof Float32Array) {
    const n = W.nested;
    k.nf4Gemm(transW, M, N, K, A as Float32Array, W.codes, W.code, W.blockSize, W.absmax, n?.qabsmax ?? null,
      n?.nestedAbsmax ?? null, n?.nestedCode ?? null, n?.nestedBlockSize ?? 0, n?.offset ?? 0, beta, C);
    return;
  }
  const rows = tileRows(N, K);
  const single = rows >= N;
  const buf = buffers(f64, rows * K, single ? 0 : M * rows);
  for (let r0 = 0; r0 < N; r0 += rows) {
    const rt = Math.min(rows, N - r0);
    const tile = buf.tile.subarray(0, rt * K);
    dequantizeRange(W, r0 * K, (r0 + rt) * K, tile);
    if (transW) {
      if (single) {
        k.gemm(false, true, M, N, K, 1, A, tile, beta, C);
        return;
      }
      // C[:, r0:r0+rt] = A · tile^T, through a contiguous [M, rt] buffer
      const part = buf.cols.subarray(0, M * rt);
      k.gemm(false, true, M, rt, K, 1, A, tile, 0, part);
      for (let m = 0; m < M; m++) {
        const c = m * N + r0;
        const p = m * rt;
        if (beta === 0) for (let j = 0; j < rt; j++) C[c + j] = part[p + j]!;
        else for (let j = 0; j < rt; j++) C[c + j] = part[p + j]! + beta * C[c + j]!;
      }
    } else {
      const b = r0 === 0 ? beta : 1;
      if (single) {
        k.gemm(false, false, M, K, N, 1, A, tile, b, C);
        return;
      }
      // C += A[:, r0:r0+rt] · tile, gathering the A columns into a contiguous [M, rt] buffer
      const part = buf.cols.subarray(0, M * rt);
      for (let m = 0; m < M; m++) {
        const a = m * N + r0;
        const p = m * rt;
        for (let j = 0; j < rt; j++) part[p + j] = A[a + j]!;
      }
      k.gemm(false, false, M, K, rt, 1, part, tile, b, C);
    }
  }
}

/**
 * nf4Gemm for several products in one call: product i multiplies Ms[i] rows of As[i] with Ws[i]
 * (every W [N, K]) into Cs[i]. The backend's grouped kernel when it has one and every weight is
 * float32 data in the same format (the threads share out whole products), else one nf4Gemm per
 * product (the reference; float64 too).
 */
export function nf4GemmGrouped(transW: boolean, Ms: Int32Array, N: number, K: number, As: readonly FloatArray[],
  Ws: readonly Nf4Weight[], beta: number, Cs: readonly FloatArray[]): void {
  const n = Ms.length;
  if (As.length !== n || Ws.length !== n || Cs.length !== n) {
    throw new Error(`nf4GemmGrouped: Ms, As, Ws and Cs must have the same length, got ${n}, ${As.length}, ${Ws.length}, ${Cs.length}`);
  }
  if (n === 0) return;
  const f32 = As.every((a) => a instanceof Float32Array) && Cs.every((c) => c instanceof Float32Array);
  const k = kernelsFor({ dtype: f32 ? 'float32' : 'float64' });
  const w0 = Ws[0]!;
  const sameFormat = Ws.every((w) => w.shape[0] === N && w.shape[1] === K && w.blockSize === w0.blockSize && w.code === w0.code
    && (w.nested === null) === (w0.nested === null) && (w.nested === null || (w.nested.nestedCode === w0.nested!.nestedCode && w.nested.nestedBlockSize === w0.nested!.nestedBlockSize)));
  if (k.nf4GemmGrouped && f32 && sameFormat) {
    const nested = w0.nested !== null;
    k.nf4GemmGrouped(transW, Ms, N, K, As as Float32Array[], Ws.map((w) => w.codes), w0.code, w0.blockSize,
      nested ? null : Ws.map((w) => w.absmax!), nested ? Ws.map((w) => w.nested!.qabsmax) : null,
      nested ? Ws.map((w) => w.nested!.nestedAbsmax) : null, nested ? w0.nested!.nestedCode : null,
      nested ? w0.nested!.nestedBlockSize : 0, nested ? Float32Array.from(Ws, (w) => w.nested!.offset) : null, beta, Cs as Float32Array[]);
    return;
  }
  for (let i = 0; i < n; i++) nf4Gemm(transW, Ms[i]!, N, K, As[i]!, Ws[i]!, beta, Cs[i]!);
}
