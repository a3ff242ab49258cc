/**
 * Top-k and sorting helpers on plain typed arrays (router index work stays out of the tape).
 * Ties are broken deterministically in favour of the lower index: for AdaMoE the true experts
 * come before the null experts, so a true expert wins a tie with its null copy.
 */

/** Indices of row r sorted by value descending (ties: lower index first). */
export function argsortDesc(values: ArrayLike<number>, offset: number, n: number, out: Int32Array = new Int32Array(n)): Int32Array {
  for (let i = 0; i < n; i++) out[i] = i;
  // insertion sort: n is the number of experts (small)
  for (let i = 1; i < n; i++) {
    const cur = out[i]!;
    const v = values[offset + cur]!;
    let j = i - 1;
    while (j >= 0) {
      const w = values[offset + out[j]!]!;
      if (w > v || (w === v && out[j]! < cur)) break;
      out[j + 1] = out[j]!;
      j--;
    }
    out[j + 1] = cur;
  }
  return out;
}

export { topkRows } from './backends/js/top-k.js';

/** Stable grouping: for each group g, the positions i with key[i] == g, in order (counting sort). */
export function groupBy(keys: Int32Array, groups: number): { offsets: Int32Array; order: Int32Array } {
  const offsets = new Int32Array(groups + 1);
  for (let i = 0; i < keys.length; i++) offsets[keys[i]! + 1]!++;
  for (let g = 0; g < groups; g++) offsets[g + 1]! += offsets[g]!;
  const fill = offsets.slice(0, groups);
  const order = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) order[fill[keys[i]!]!++] = i;
  return { offsets, order };
}
