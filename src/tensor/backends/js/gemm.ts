import type { FloatArray } from '../../backend.js';

/**
 * Reference GEMM: C[M,N] = alpha * op(A) op(B) + beta * C, row-major. The i-k-j loop order keeps
 * the inner loop contiguous over C and B for the common (transB = false) case; the transB case
 * is a dot product over contiguous rows of A and B. Sums are accumulated in the array's precision
 * per element update (float64 in JS numbers), which makes this at least as accurate as the native
 * kernel.
 */
export function gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: FloatArray, B: FloatArray, beta: number, C: FloatArray): void {
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    if (!transB) {
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * M + i]! : A[i * K + k]!;
        if (a === 0) continue;
        const bRow = k * N;
        for (let j = 0; j < N; j++) acc[j]! += a * B[bRow + j]!;
      }
    } else {
      for (let j = 0; j < N; j++) {
        const bRow = j * K;
        let s = 0;
        if (transA) for (let k = 0; k < K; k++) s += A[k * M + i]! * B[bRow + k]!;
        else {
          const aRow = i * K;
          for (let k = 0; k < K; k++) s += A[aRow + k]! * B[bRow + k]!;
        }
        acc[j] = s;
      }
    }
    const cRow = i * N;
    if (beta === 0) for (let j = 0; j < N; j++) C[cRow + j] = alpha * acc[j]!;
    else for (let j = 0; j < N; j++) C[cRow + j] = alpha * acc[j]! + beta * C[cRow + j]!;
  }
}
