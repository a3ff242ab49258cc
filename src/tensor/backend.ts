/**
 * The kernel interface every backend implements (pattern: tfjs-core's kernel registry, llm.c's
 * kernels). Ops (src/tensor/ops/*) are backend-agnostic: they allocate outputs and call these
 * kernels on raw typed arrays. A kernel never allocates; it writes into the `out` arrays the caller
 * passes (fully overwriting them unless the doc says "accumulates").
 *
 * Layout conventions: every array is dense, row-major, contiguous; shapes are given as counts.
 * `FloatArray` is Float32Array on the native backend; the js backend also accepts Float64Array
 * (used by the finite-difference gradient checks). Index arrays are Int32Array.
 *
 * A new backend (a tfjs adapter, a GPU one) is one more folder under src/tensor/backends that
 * implements this interface and is added to src/tensor/backends/registry.ts.
 */
export type FloatArray = Float32Array | Float64Array;

/** Binary elementwise operators with numpy broadcasting (see `binary`). */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';
/** Unary elementwise operators. */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'abs' | 'silu' | 'sigmoid' | 'relu' | 'tanh';
/** Reductions along one axis. */
export type ReduceOp = 'sum' | 'max' | 'min';

export interface Backend {
  readonly name: string;
  /** Threads the backend computes with (1 for js). */
  readonly threads: number;

  // ---------------------------------------------------------------- dense linear algebra
  /**
   * C[M,N] = alpha * op(A) * op(B) + beta * C.
   * op(A) is [M,K]: A is stored [M,K], or [K,M] when transA. op(B) is [K,N]: B is stored [K,N],
   * or [N,K] when transB. beta = 0 means C is written without being read (NaNs in C do not leak).
   */
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: FloatArray, B: FloatArray, beta: number, C: FloatArray): void;

  // ---------------------------------------------------------------- elementwise
  /**
   * out = a (op) b with numpy broadcasting. aShape / bShape are right-aligned against outShape
   * (they may have fewer dims); a size-1 dim broadcasts. Fast paths: same shape, b scalar,
   * b a row vector of the last dim.
   */
  binary(op: BinaryOp, a: FloatArray, aShape: readonly number[], b: FloatArray, bShape: readonly number[],
    out: FloatArray, outShape: readonly number[]): void;
  /** out[i] = op(x[i]) for i < n. */
  unary(op: UnaryOp, x: FloatArray, out: FloatArray, n: number): void;
  /**
   * Backward of unary ops, fused: dx[i] = dy[i] * op'(x[i]) (given x and, where cheaper, y = op(x)).
   */
  unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, dy: FloatArray, dx: FloatArray, n: number): void;
  /** out[i] = alpha * x[i] + beta * out[i]; beta = 0 writes out without reading it. */
  axpby(alpha: number, x: FloatArray, beta: number, out: FloatArray, n: number): void;
  /** out[i] = value for i < n. */
  fill(out: FloatArray, value: number, n: number): void;
  /**
   * Reduce x viewed as [outer, axisLen, inner] along the middle axis into out [outer, inner].
   */
  reduce(op: ReduceOp, x: FloatArray, outer: number, axisLen: number, inner: number, out: FloatArray): void;
  /** Sum of x[i]^2 for i < n, accumulated in float64 (gradient clipping, norms). */
  sumSquares(x: FloatArray, n: number): number;

  // ---------------------------------------------------------------- transformer kernels
  /**
   * RMSNorm over rows of x [rows, dim]: out = w * x / sqrt(mean(x^2) + eps), computed in fp32
   * or better. Writes rstd[rows] = 1 / sqrt(mean(x^2) + eps) for the backward.
   */
  rmsnormForward(x: FloatArray, w: FloatArray, eps: number, rows: number, dim: number,
    out: FloatArray, rstd: FloatArray): void;
  /** dx = d/dx (written); dw accumulates (dw += sum over rows). */
  rmsnormBackward(dy: FloatArray, x: FloatArray, w: FloatArray, rstd: FloatArray, rows: number, dim: number,
    dx: FloatArray, dw: FloatArray): void;
  /**
   * Rotary embedding, rotate_half form, on x [B, T, H, Dh]. cos/sin are [T, Dh/2] tables for
   * the T positions. For i < Dh/2: out[i] = x[i] cos - x[i+h] sin; out[i+h] = x[i+h] cos + x[i] sin
   * (h = Dh/2). With inverse = true the rotation is by -angle (the backward). out may alias x.
   */
  rope(x: FloatArray, cos: FloatArray, sin: FloatArray, B: number, T: number, H: number, Dh: number,
    inverse: boolean, out: FloatArray): void;
  /**
   * Scaled dot-product attention with grouped-query heads. q [B, T, H, Dh], k and v [B, S, Hkv, Dh],
   * H a multiple of Hkv (query head h reads kv head floor(h / (H / Hkv))). causal: query t sees keys
   * s <= t + (S - T). Softmax with the max trick, never a T x S mask tensor.
   * Writes out [B, T, H, Dh] and lse [B, H, T] (log-sum-exp of the scaled scores, for the backward).
   */
  attentionForward(q: FloatArray, k: FloatArray, v: FloatArray, B: number, T: number, S: number, H: number,
    Hkv: number, Dh: number, scale: number, causal: boolean, out: FloatArray, lse: FloatArray): void;
  /**
   * Backward of attentionForward (flash-attention style: probabilities recomputed from lse).
   * dq is written; dk and dv are written (not accumulated).
   */
  attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray, dout: FloatArray,
    B: number, T: number, S: number, H: number, Hkv: number, Dh: number, scale: number, causal: boolean,
    dq: FloatArray, dk: FloatArray, dv: FloatArray): void;
  /** SwiGLU: out = silu(g) * u, for n elements. */
  swigluForward(g: FloatArray, u: FloatArray, out: FloatArray, n: number): void;
  /** dg, du written. */
  swigluBackward(g: FloatArray, u: FloatArray, dout: FloatArray, dg: FloatArray, du: FloatArray, n: number): void;
  /** Row softmax over x [rows, cols] with the max trick. out may alias x. */
  softmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void;
  /** dx = y * (dy - sum(dy * y)) per row. */
  softmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void;
  /** Row log-softmax over x [rows, cols]. */
  logSoftmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void;
  /** dx = dy - exp(y) * sum(dy) per row (y = log-softmax output). */
  logSoftmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void;
  /**
   * Fused log-softmax + negative log-likelihood over logits [rows, V] (never a one-hot).
   * losses[r] = lse_r - logits[r, target_r], or 0 when target_r == ignoreIndex; lse[r] written for
   * every row.
   */
  crossEntropyForward(logits: FloatArray, targets: Int32Array, rows: number, V: number, ignoreIndex: number,
    losses: FloatArray, lse: FloatArray): void;
  /**
   * dlogits[r, :] = scale_r * (softmax(logits[r]) - onehot(target_r)), 0 for ignored rows.
   * scale_r = dlosses[r] (the incoming gradient of each row's loss).
   */
  crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, dlosses: FloatArray,
    rows: number, V: number, ignoreIndex: number, dlogits: FloatArray): void;

  // ---------------------------------------------------------------- indexing (embedding, MoE dispatch / combine)
  /** out[i, :] = src[idx[i], :] for i < n; rows of length dim. */
  gatherRows(src: FloatArray, idx: Int32Array, n: number, dim: number, out: FloatArray): void;
  /**
   * Accumulates: out[idx[i], :] += w[i] * src[i, :] for i < n (w null means 1). Duplicate indices
   * add up; implementations must not race on them.
   */
  scatterAddRows(src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number, out: FloatArray): void;
  /**
   * scatterAddRows onto out [rows, dim] as if it held zeros, without reading or zeroing it first:
   * out[r, :] = sum over i with idx[i] == r, in order of i, of w[i] * src[i, :] (the same roundings
   * as scatterAddRows onto zeros), 0 for rows no index names (the MoE combine, a gather's backward).
   */
  scatterRows(src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number, rows: number, out: FloatArray): void;
  /**
   * The backward of the weighted combine (scatterRows / scatterAddRows with weights w) in one pass:
   * dsrc[i, :] = w[i] * dy[idx[i], :] and dw[i] = dot(dy[idx[i], :], src[i, :]), dy [rows, dim];
   * either output may be null. The same numbers as gatherRows + a multiply, and gatherRowDot.
   */
  scatterRowsBackward(dy: FloatArray, idx: Int32Array, w: FloatArray, src: FloatArray, n: number, dim: number, rows: number,
    dsrc: FloatArray | null, dw: FloatArray | null): void;
  /** out[i] = dot(a[idx[i], :], b[i, :]) for i < n (gradient of the combine weights). */
  gatherRowDot(a: FloatArray, idx: Int32Array, b: FloatArray, n: number, dim: number, out: FloatArray): void;
  /** out[r, j] = x[r, idx[r, j]] for x [rows, cols], idx [rows, k]. */
  takeAlongRows(x: FloatArray, idx: Int32Array, rows: number, cols: number, k: number, out: FloatArray): void;
  /** Accumulates: dx[r, idx[r, j]] += dy[r, j]. */
  takeAlongRowsBackward(dy: FloatArray, idx: Int32Array, rows: number, cols: number, k: number, dx: FloatArray): void;

  // ---------------------------------------------------------------- routing (top-k MoE routers)
  /**
   * The router step of a top-k MoE layer in one call. logits [T, R]: rows [0, N) are true experts,
   * rows [N, R) cost nothing (AdaMoE null experts). Writes probs = softmax(logits); slotRows [T, k],
   * each token's k largest probabilities in descending order (ties: lower row; 1 <= k <= R);
   * top1 [T] (largest, first on ties); selected [T, R] (1 for the chosen rows); offsets [N + 1]
   * and, for the P = offsets[N] (token, true expert) pairs grouped by expert (tokens ascending
   * within an expert), tokens [P] and gates [P]; slotPair [T, k] (pair of each slot, -1 for a null
   * row). A pair's gate is its probability, divided when `normalize` by the sum of the token's
   * chosen true probabilities (rounded to the data's float type; 1 when it chose none). nullSums,
   * when given, gets each token's summed probability of its chosen null rows. tokens and gates
   * need room for T * k. Returns P.
   */
  routeTopK(logits: FloatArray, T: number, R: number, N: number, k: number, normalize: boolean, probs: FloatArray,
    slotRows: Int32Array, slotPair: Int32Array, top1: Int32Array, selected: Uint8Array, offsets: Int32Array,
    tokens: Int32Array, gates: FloatArray, nullSums: FloatArray | null): number;
  /**
   * Overwrites dlogits [T, R] with the gradient of routeTopK's outputs: dprobs [T, R], dgates [P]
   * and dnull [T], any of them null (no gradient).
   */
  routeTopKBackward(probs: FloatArray, slotRows: Int32Array, slotPair: Int32Array, gates: FloatArray, T: number,
    R: number, N: number, k: number, normalize: boolean, dprobs: FloatArray | null, dgates: FloatArray | null,
    dnull: FloatArray | null, dlogits: FloatArray): void;

  // ---------------------------------------------------------------- optimizer
  /**
   * AdamW in place over n elements (decoupled weight decay, as torch.optim.AdamW):
   *   p -= lr * wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   *   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
   * where bc1 = 1 - b1^t and bc2 = 1 - b2^t are passed in. gradScale multiplies g first (clipping,
   * accumulation averaging).
   */
  adamw(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, lr: number, b1: number, b2: number,
    eps: number, wd: number, bc1: number, bc2: number, gradScale: number): void;

  // ---------------------------------------------------------------- optional kernels
  // A backend may leave these out; callers check for them and fall back to a composition of the
  // kernels above (the reference named in each comment).

  /**
   * Independent products in one call (e.g. one projection of every expert of an MoE layer):
   * C_i = alpha * op(A_i) * op(B_i) + beta * C_i for i < Ms.length, each with gemm's layout and its
   * own sizes Ms[i], Ns[i], Ks[i]; As[i], Bs[i], Cs[i] may be views into shared buffers (the
   * gathered tokens of each expert). The threads share out whole products instead of splitting each
   * small one. Results equal gemm on each product. Reference: gemmGroupedReference below.
   */
  gemmGrouped?(transA: boolean, transB: boolean, Ms: Int32Array, Ns: Int32Array, Ks: Int32Array, alpha: number,
    As: readonly FloatArray[], Bs: readonly FloatArray[], beta: number, Cs: readonly FloatArray[]): void;

  /**
   * The NF4 GEMM of a frozen 4-bit weight W [N, K] (src/quant/nf4.ts format), float32 only:
   *   transW = true:  C[M, N] = A[M, K] · Wᵀ + beta C      (forward)
   *   transW = false: C[M, K] = A[M, N] · W  + beta C      (input gradient)
   * W is given as packed codes (element e = codes[e >> 1] >> 4 when e is even, & 15 when odd), the
   * 16-value code book, the block size and either absmax (one float32 scale per block) or the
   * double-quantised scales (qabsmax, nestedAbsmax, nestedCode, nestedBlockSize, offset: scale of
   * block b = nestedCode[qabsmax[b]] * nestedAbsmax[floor(b / nestedBlockSize)] + offset, in
   * float32); the others are null. The weight is dequantised panel by panel inside the GEMM,
   * never as a whole. beta = 0 writes C without reading it. Reference: nf4Gemm in
   * src/quant/nf4-gemm.ts (dequantised tiles through `gemm`).
   */
  nf4Gemm?(transW: boolean, M: number, N: number, K: number, A: Float32Array,
    codes: Uint8Array, code: Float32Array, blockSize: number,
    absmax: Float32Array | null, qabsmax: Uint8Array | null, nestedAbsmax: Float32Array | null,
    nestedCode: Float32Array | null, nestedBlockSize: number, offset: number,
    beta: number, C: Float32Array): void;

  /**
   * nf4Gemm for every i < Ms.length in one call (one projection of every expert of an MoE layer):
   * Ms[i] rows of As[i], the NF4 weight i (codes[i] and absmax[i], or with double quantisation
   * qabsmax[i], nestedAbsmax[i], offsets[i]; all [N, K], one code book), into Cs[i]. The threads
   * share out whole products; each equals nf4Gemm's result. Reference: nf4GemmGrouped in
   * src/quant/nf4-gemm.ts (one nf4Gemm per product).
   */
  nf4GemmGrouped?(transW: boolean, Ms: Int32Array, N: number, K: number, As: readonly Float32Array[],
    codes: readonly Uint8Array[], code: Float32Array, blockSize: number, absmax: readonly Float32Array[] | null,
    qabsmax: readonly Uint8Array[] | null, nestedAbsmax: readonly Float32Array[] | null, nestedCode: Float32Array | null,
    nestedBlockSize: number, offsets: Float32Array | null, beta: number, Cs: readonly Float32Array[]): void;

  // ---- loading kernels (optional; native/src/weight_load.h). Stored data is a safetensors
  // float dtype, 0 = F32, 1 = BF16, 2 = F16, read from `bytes` or, when it is null, from the open
  // file descriptor `fd` at `byteOffset` (pread, each thread its own bounded chunk).

  /**
   * numel stored values decoded to float32 into out, bit-exact (src/io/dtype.ts). Returns 0, or
   * -errno when a read fails, or 1 when the file ends early.
   */
  decodeStored?(dtype: number, bytes: Uint8Array | null, fd: number, byteOffset: number, numel: number,
    out: Float32Array): number;

  /**
   * NF4 quantisation of numel stored values (src/quant/nf4.ts quantizeNf4Js, bit-exact): packed
   * codes and one float32 absmax per block; thresholds = NF4_THRESHOLDS. Returns -1, or the first
   * block holding a non-finite value, or <= -2 when reading fails.
   */
  nf4QuantizeStored?(dtype: number, bytes: Uint8Array | null, fd: number, byteOffset: number, numel: number,
    blockSize: number, thresholds: Float32Array, codes: Uint8Array, absmax: Float32Array): number;

  /**
   * Selects the NF4 block kernel of nf4QuantizeStored ('avx512', 'avx2', 'portable'; all compute
   * the same bits) when a name is given; returns "active;available,..." (best first).
   */
  nf4QuantizeIsa?(name: string | null): string;

  /** Double quantisation of n block scales (quantizeScalesJs, bit-exact); returns the offset. */
  nf4QuantizeScales?(absmax: Float32Array, n: number, nestedBlockSize: number, dynamicCode: Float32Array,
    qabsmax: Uint8Array, nestedAbsmax: Float32Array): number;
}

/** The reference of `gemmGrouped`: one `gemm` per product (for backends without the kernel). */
export function gemmGroupedReference(k: Backend, transA: boolean, transB: boolean, Ms: Int32Array, Ns: Int32Array,
  Ks: Int32Array, alpha: number, As: readonly FloatArray[], Bs: readonly FloatArray[], beta: number,
  Cs: readonly FloatArray[]): void {
  if (Ns.length !== Ms.length || Ks.length !== Ms.length || As.length !== Ms.length || Bs.length !== Ms.length || Cs.length !== Ms.length) {
    throw new Error(`gemmGrouped: Ms, Ns, Ks, As, Bs and Cs must have the same length, got ${Ms.length}, ${Ns.length}, ${Ks.length}, ${As.length}, ${Bs.length}, ${Cs.length}`);
  }
  for (let i = 0; i < Ms.length; i++) k.gemm(transA, transB, Ms[i]!, Ns[i]!, Ks[i]!, alpha, As[i]!, Bs[i]!, beta, Cs[i]!);
}
