import { expect } from 'vitest';
import type { Routing } from '../../src/routers/router.js';

/** The FLOP-costing pairs of a routing as one {expert: gate} object per token. */
export function pairsByToken(r: Routing): Record<number, number>[] {
  const out: Record<number, number>[] = Array.from({ length: r.numTokens }, () => ({}));
  const g = r.gates.f;
  for (let e = 0; e < r.numExperts; e++) {
    for (let p = r.expertOffsets[e]!; p < r.expertOffsets[e + 1]!; p++) out[r.tokens[p]!]![e] = g[p]!;
  }
  return out;
}

/** Asserts the pairs equal `expected` (same experts per token, gates within 1e-12). */
export function expectPairs(r: Routing, expected: Record<number, number>[]): void {
  const got = pairsByToken(r);
  expect(got.map((o) => Object.keys(o).map(Number).sort())).toEqual(expected.map((o) => Object.keys(o).map(Number).sort()));
  got.forEach((o, t) => {
    for (const [e, g] of Object.entries(expected[t]!)) expect(o[Number(e)]!, `token ${t} expert ${e}`).toBeCloseTo(g, 12);
  });
}

/** Selected router rows of each token (before drops), ascending. */
export function selectedRows(r: Routing): number[][] {
  const R = r.layout.rows;
  return Array.from({ length: r.numTokens }, (_, t) => {
    const rows: number[] = [];
    for (let j = 0; j < R; j++) if (r.selected[t * R + j]) rows.push(j);
    return rows;
  });
}
