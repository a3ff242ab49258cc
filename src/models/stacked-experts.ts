/**
 * The routed experts of one MoE layer, and the one place where expert compute happens. Children are
 * the experts "0" .. "N-1" (each a GatedMLP with the family's projection names), so tensor keys
 * stay the Hub checkpoint's (`experts.3.w1.weight`, `experts.3.gate_proj.weight`) and LoRA / NF4 /
 * PEFT target them by name. `forward` takes the tokens already grouped by expert (a Routing's
 * `tokens` / `expertOffsets`) and returns the expert outputs in that order; the MoE block
 * scatter-adds them with the gates.
 *
 * Every projection of all experts is one grouped product over the tokens gathered once: plain
 * bias-free float experts through grouped GEMMs (gate and up in one call), 4-bit and LoRA-wrapped
 * experts through the runners registered in grouped-linears.ts (grouped NF4 GEMMs with the tiles
 * dequantised into the packed panels; grouped LoRA A / B products over grouped bases). A kind no
 * runner takes runs one expert at a time through its own forward (the same function).
 */
import { kernelsFor, ops, releaseNow, type FloatArray, type Tensor } from '../tensor/index.js';
import type { ForwardContext } from './forward-context.js';
import { groupedLinearRunner } from './grouped-linears.js';
import { Linear, type LinearLike } from './linear.js';
import type { GatedMLP } from './mlp.js';
import { ModuleList } from './module.js';

export class StackedExperts extends ModuleList<GatedMLP> {
  /** Run plain experts through grouped GEMMs (false: one expert at a time; same result). */
  grouped = true;

  /**
   * Expert outputs [P, D] for the rows of `flat` [T, D] listed in `tokens` (grouped by expert:
   * expert e owns tokens[offsets[e] .. offsets[e+1])).
   */
  forward(flat: Tensor, tokens: Int32Array, offsets: Int32Array, ctx?: ForwardContext): Tensor {
    const plain = this.grouped ? this.plainWeights() : null;
    if (plain) {
      const xg = ops.gatherRows(flat, tokens);
      const [g, u] = ops.groupedLinearMany(xg, [plain.gate, plain.up], offsets) as [Tensor, Tensor];
      return ops.groupedLinear(ops.swiglu(g, u), plain.down, offsets);
    }
    if (this.grouped) {
      const proj = (role: 'gate' | 'up' | 'down'): LinearLike[] => this.items.map((e) => e.proj(role));
      const [gate, up, down] = [proj('gate'), proj('up'), proj('down')];
      const rg = groupedLinearRunner(gate, ctx);
      const ru = groupedLinearRunner(up, ctx);
      const rd = groupedLinearRunner(down, ctx);
      if (rg && ru && rd) {
        const xg = ops.gatherRows(flat, tokens);
        const k = kernelsFor(flat);
        const D = flat.shape[flat.rank - 1]!;
        const gatherAgain = (out: FloatArray): void => k.gatherRows(flat.f, tokens, tokens.length, D, out);
        const g = rg.run(gate, xg, offsets, ctx, gatherAgain);
        const u = ru.run(up, xg, offsets, ctx, gatherAgain);
        // no backward reads the gathered rows (frozen 4-bit bases; adapters gather them again): their
        // [pairs, in] memory goes back now, not at the step's end; the same for SwiGLU's output
        if (!rg.keepsInput(gate, ctx) && !ru.keepsInput(up, ctx)) releaseNow(xg);
        const h = ops.swiglu(g, u);
        const y = rd.run(down, h, offsets, ctx, (out) => k.swigluForward(g.f, u.f, out, g.size));
        if (!rd.keepsInput(down, ctx)) releaseNow(h);
        return y;
      }
    }
    const parts: Tensor[] = [];
    for (let e = 0; e < this.length; e++) {
      const lo = offsets[e]!;
      const hi = offsets[e + 1]!;
      if (hi === lo) continue;
      parts.push(this.at(e).forward(ops.gatherRows(flat, tokens.subarray(lo, hi)), ctx));
    }
    return parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
  }

  /** The gate / up / down weights of every expert when all are plain bias-free Linear layers. */
  plainWeights(): { gate: Tensor[]; up: Tensor[]; down: Tensor[] } | null {
    const w: { gate: Tensor[]; up: Tensor[]; down: Tensor[] } = { gate: [], up: [], down: [] };
    for (const e of this.items) {
      for (const role of ['gate', 'up', 'down'] as const) {
        const lin = e[role];
        if (!(lin instanceof Linear) || lin.bias !== null) return null;
        w[role].push(lin.weight);
      }
    }
    return w;
  }
}
