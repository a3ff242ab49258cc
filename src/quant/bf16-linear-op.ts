/**
 * The differentiable op of a frozen 16-bit linear layer: y = x Wᵀ with W [N, K] kept as the
 * checkpoint's bfloat16 bits (half the bytes of a float32 copy; QLoRA keeps its head in the compute
 * dtype, never in 4 bits). W is widened panel by panel (PANEL_ROWS rows of W into one pooled
 * scratch; bf16 -> float is exact) and multiplied with the backend's GEMM, so the float matrix is
 * never held whole. Backward: dx = dy W over the same panels; W gets no gradient (frozen).
 */
import { bf16ArrayToFloat32, bf16ToFloat32 } from '../io/index.js';
import { kernelsFor, record, shapeStr, Tensor, withScope, type Backend, type FloatArray } from '../tensor/index.js';

/** Rows of W widened at a time (16 MiB of float32 at width 2048). */
export const PANEL_ROWS = 2048;

/**
 * Widens rows r0 .. r1 of the bf16 matrix W [*, K] into out (float32 or float64): the backend's
 * threaded loading kernel where it has one (bit-exact, as the JS codec), else the JS codec.
 */
export function widenBf16Rows(k: Backend, bits: Uint16Array, K: number, r0: number, r1: number, out: FloatArray): void {
  const src = bits.subarray(r0 * K, r1 * K);
  if (out instanceof Float32Array) {
    if (k.decodeStored && src.length > 0) {
      const r = k.decodeStored(1, new Uint8Array(src.buffer, src.byteOffset, src.byteLength), -1, 0, src.length, out.subarray(0, src.length));
      if (r !== 0) throw new Error(`bf16Linear: the native bf16 decode failed (${r})`);
    } else bf16ArrayToFloat32(src, out.subarray(0, src.length));
  } else for (let i = 0; i < src.length; i++) out[i] = bf16ToFloat32(src[i]!);
}

export function bf16Linear(x: Tensor, bits: Uint16Array, shape: readonly [number, number], name?: string): Tensor {
  const [N, K] = shape;
  if (x.dtype === 'int32' || x.shape[x.rank - 1] !== K) {
    throw new Error(`bf16Linear${name ? ` ${name}` : ''}: input ${shapeStr(x.shape)} (${x.dtype}) does not fit weight [${N}, ${K}] (expected float [..., ${K}])`);
  }
  if (bits.length !== N * K) throw new Error(`bf16Linear${name ? ` ${name}` : ''}: weight holds ${bits.length} values, expected ${N} x ${K}`);
  const M = K === 0 ? 0 : x.size / K;
  const k = kernelsFor(x);
  const y = Tensor.empty([...x.shape.slice(0, -1), N], x.dtype);
  const P = Math.max(1, Math.min(PANEL_ROWS, N));
  // the scratch goes back to the pool right away (a scope of its own), not at the step's end
  withScope(() => {
    const panel = Tensor.empty([P, K], x.dtype);
    const part = Tensor.empty([M, P], x.dtype);
    for (let r0 = 0; r0 < N; r0 += P) {
      const r1 = Math.min(N, r0 + P);
      const n = r1 - r0;
      widenBf16Rows(k, bits, K, r0, r1, panel.f);
      // y[:, r0:r1] = x W[r0:r1]ᵀ (into a [M, n] block, then into y's rows)
      k.gemm(false, true, M, n, K, 1, x.f, panel.f, 0, part.f);
      const yf = y.f;
      const pf = part.f;
      for (let m = 0; m < M; m++) yf.set(pf.subarray(m * n, (m + 1) * n), m * N + r0);
    }
  });
  record('bf16Linear', [x], [y], ([dy], ctx) => {
    const tx = ctx.target(0);
    if (!dy || !tx) return;
    const w = Tensor.empty([P, K], x.dtype);
    const g = Tensor.empty([M, P], x.dtype);
    let beta = tx.beta;
    for (let r0 = 0; r0 < N; r0 += P) {
      const r1 = Math.min(N, r0 + P);
      const n = r1 - r0;
      widenBf16Rows(k, bits, K, r0, r1, w.f);
      const gf = g.f;
      const df = dy.f;
      for (let m = 0; m < M; m++) gf.set(df.subarray(m * N + r0, m * N + r1), m * n);
      // dx (+)= dy[:, r0:r1] W[r0:r1]
      k.gemm(false, false, M, K, n, 1, gf, w.f, beta, tx.data);
      beta = 1;
    }
  });
  return y;
}
