/**
 * The router rows of a MoE layer as row groups: each group is a run of rows in one of the block's
 * router linears, with what a row maps to (a true expert, a null expert, the negated expert of a
 * ternary pair, a zero expert), how its rows start, and its bias. Plain families have one group;
 * AdaMoE null experts add a `gate2` group, TC-MoE ternary rows grow the router with two more groups
 * and a bias. The builder, the random initialiser, the FLOP dimensions and the model info read these
 * groups; the router reads the rows in this order (routers/router.ts RouterLayout).
 */
import type { ModelConfig } from './config.js';
import { layoutOf } from './architectures/index.js';

/** What a router row selects: a true (FLOP-costing) expert, a null expert, E_i^-1 = -E_i, or a zero expert. */
export type RowTarget = 'expert' | 'null' | 'negative' | 'zero';

export interface RouterRowGroup {
  /** Local name of the router linear holding these rows inside the MoE block (`gate`, `gate2`). */
  module: string;
  rows: number;
  maps: RowTarget;
  /** How the rows start when a surgery pass adds them (in words, for reports and docs). */
  init: string;
  /** Initial bias of these rows when their linear has a bias (TC-MoE: 0 / -1 / -10), else null. */
  bias: number | null;
}

/** moe-tune's own linear for the AdaMoE null-expert rows, a sibling of the family's router. */
export const NULL_ROWS_MODULE = 'gate2';

/** The row groups of one MoE layer of this config, in router order. */
export function routerRowGroups(config: ModelConfig): RouterRowGroup[] {
  const moe = config.moe;
  if (!moe) return [];
  const router = layoutOf(config).names.router;
  const N = moe.numExperts;
  const ext = config.extensions;
  if (ext.ternary) {
    // TC-MoE (paper 000 §3.2, A.2): E^1 (the old rows), E^-1 and E^0 rows with bias 0 / -1 / -10
    const K = ext.ternary.zero_experts;
    return [
      { module: router, rows: N, maps: 'expert', init: 'checkpoint', bias: 0 },
      { module: router, rows: N, maps: 'negative', init: 'N(0, 0.006^2)', bias: -1 },
      { module: router, rows: K, maps: 'zero', init: 'N(0, 0.006^2)', bias: -10 },
    ];
  }
  const groups: RouterRowGroup[] = [{ module: router, rows: N, maps: 'expert', init: 'checkpoint', bias: null }];
  if (ext.null_experts) groups.push({ module: NULL_ROWS_MODULE, rows: ext.null_experts.m, maps: 'null', init: 'derived from the router rows (AdaMoE)', bias: null });
  return groups;
}

/** Total router rows R of one MoE layer (N, N + m, 2N + K). */
export function routerRowCount(config: ModelConfig): number {
  return routerRowGroups(config).reduce((a, g) => a + g.rows, 0);
}

/** The router linears of one layer: local name, rows, and their initial bias (null: no bias). */
export function routerModules(config: ModelConfig): { module: string; rows: number; bias: Float32Array | null }[] {
  const out: { module: string; rows: number; groups: RouterRowGroup[] }[] = [];
  for (const g of routerRowGroups(config)) {
    const cur = out.find((o) => o.module === g.module);
    if (cur) {
      cur.rows += g.rows;
      cur.groups.push(g);
    } else out.push({ module: g.module, rows: g.rows, groups: [g] });
  }
  return out.map(({ module, rows, groups }) => {
    if (groups.every((g) => g.bias === null)) return { module, rows, bias: null };
    const b = new Float32Array(rows);
    let r = 0;
    for (const g of groups) {
      b.fill(g.bias ?? 0, r, r + g.rows);
      r += g.rows;
    }
    return { module, rows, bias: b };
  });
}
