/** topkRows (partial selection) against a full stable sort, ties to the lower index. */
import { describe, expect, it } from 'vitest';
import { argsortDesc, Rng, topkRows } from '../src/tensor/index.js';

describe('topkRows', () => {
  it('equals the first k of a stable descending sort, with ties and k >= cols', () => {
    const rng = new Rng(3);
    for (const [rows, cols] of [[50, 16], [20, 8], [7, 3], [5, 1]] as const) {
      // few distinct values so ties are common
      const v = Float32Array.from({ length: rows * cols }, () => rng.int(4) / 4);
      for (const k of [1, 2, 3, cols, cols + 2]) {
        const { indices, k: kk } = topkRows(v, rows, cols, k);
        expect(kk).toBe(Math.min(k, cols));
        for (let r = 0; r < rows; r++) {
          const order = argsortDesc(v, r * cols, cols);
          expect(Array.from(indices.subarray(r * kk, (r + 1) * kk))).toEqual(Array.from(order.subarray(0, kk)));
        }
      }
    }
  });

  it('a hand-worked row: values [0.2, 0.5, 0.5, 0.1, 0.5], k = 2 -> [1, 2]', () => {
    expect(Array.from(topkRows([0.2, 0.5, 0.5, 0.1, 0.5], 1, 5, 2).indices)).toEqual([1, 2]);
    expect(Array.from(topkRows([0.2, 0.5, 0.5, 0.1, 0.5], 1, 5, 4).indices)).toEqual([1, 2, 4, 0]);
  });
});
