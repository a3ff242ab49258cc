import { ops, type Tensor } from '../tensor/index.js';
import type { GatedProjNames } from './architectures/layout.js';
import type { ForwardContext } from './forward-context.js';
import type { LinearLike } from './linear.js';
import { Module } from './module.js';

/**
 * A gated (SwiGLU) FFN: down(silu(gate(x)) * up(x)). One class for Llama's dense MLP, every routed
 * expert and the shared experts; the projections are registered under the family's names (Llama
 * `gate_proj` / `up_proj` / `down_proj`, Mixtral `w1` / `w3` / `w2`), in the order the names object
 * lists them.
 */
export class GatedMLP extends Module {
  gate: LinearLike;
  up: LinearLike;
  down: LinearLike;

  constructor(readonly names: GatedProjNames, layers: { gate: LinearLike; up: LinearLike; down: LinearLike }) {
    super();
    this.gate = layers.gate;
    this.up = layers.up;
    this.down = layers.down;
    for (const role of Object.keys(names) as (keyof GatedProjNames)[]) this.registerModule(names[role], layers[role]);
  }

  /** The projection with a role (after LoRA wrapping or quantisation, the current module). */
  proj(role: keyof GatedProjNames): LinearLike {
    return this[role];
  }

  protected override onChildReplaced(name: string, m: Module): void {
    for (const role of Object.keys(this.names) as (keyof GatedProjNames)[]) if (this.names[role] === name) this[role] = m as LinearLike;
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    return this.down.forward(ops.swiglu(this.gate.forward(x, ctx), this.up.forward(x, ctx)), ctx);
  }
}
