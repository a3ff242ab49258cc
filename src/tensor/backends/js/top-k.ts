/**
 * Row-wise top-k on plain typed arrays, ties to the lower index (for AdaMoE the true experts come
 * before the null experts, so a true expert wins a tie with its null copy). The routing kernels'
 * reference (routing.ts) and the routers' index work (re-exported by src/tensor/topk.ts) share it.
 */

/**
 * Row-wise top-k over values [rows, cols]: indices [rows, k] sorted by value descending (ties:
 * lower index first). k is clamped to cols.
 */
export function topkRows(values: ArrayLike<number>, rows: number, cols: number, k: number): { indices: Int32Array; k: number } {
  const kk = Math.min(k, cols);
  const indices = new Int32Array(rows * kk);
  const best = new Float64Array(kk);
  // partial selection, O(cols * k) per row: candidates come in index order, and one enters the
  // sorted list only past entries with a value >= its own, so equal values keep the lower index
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const out = r * kk;
    let n = 0;
    for (let c = 0; c < cols; c++) {
      const v = values[base + c]!;
      if (n === kk && !(v > best[kk - 1]!)) continue;
      let j = n < kk ? n++ : kk - 1;
      while (j > 0 && v > best[j - 1]!) {
        best[j] = best[j - 1]!;
        indices[out + j] = indices[out + j - 1]!;
        j--;
      }
      best[j] = v;
      indices[out + j] = c;
    }
  }
  return { indices, k: kk };
}
