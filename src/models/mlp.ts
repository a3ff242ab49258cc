import { ops, type Tensor } from '../tensor/index.js';
import type { ForwardContext } from './forward-context.js';
import type { LinearLike } from './linear.js';
import { Module } from './module.js';

/** Llama FFN: down(silu(gate(x)) * up(x)). */
export class LlamaMLP extends Module {
  gate_proj: LinearLike;
  up_proj: LinearLike;
  down_proj: LinearLike;

  constructor(gate: LinearLike, up: LinearLike, down: LinearLike) {
    super();
    this.gate_proj = this.registerModule('gate_proj', gate);
    this.up_proj = this.registerModule('up_proj', up);
    this.down_proj = this.registerModule('down_proj', down);
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    return this.down_proj.forward(ops.swiglu(this.gate_proj.forward(x, ctx), this.up_proj.forward(x, ctx)), ctx);
  }
}

/** Mixtral expert: w2(silu(w1 x) * w3 x). */
export class MixtralExpert extends Module {
  w1: LinearLike;
  w2: LinearLike;
  w3: LinearLike;

  constructor(w1: LinearLike, w2: LinearLike, w3: LinearLike) {
    super();
    this.w1 = this.registerModule('w1', w1);
    this.w2 = this.registerModule('w2', w2);
    this.w3 = this.registerModule('w3', w3);
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    return this.w2.forward(ops.swiglu(this.w1.forward(x, ctx), this.w3.forward(x, ctx)), ctx);
  }
}
