import { kernelsFor } from '../backends/registry.js';
import { sameShape, shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

/** SwiGLU gate: silu(g) * u, fused (one pass forward, one pass backward). */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  assertFloat('swiglu', g, u);
  if (!sameShape(g.shape, u.shape)) throw new Error(`swiglu: gate ${shapeStr(g.shape)} and up ${shapeStr(u.shape)} differ`);
  const k = kernelsFor(g, u);
  const y = Tensor.empty(g.shape, g.dtype);
  k.swigluForward(g.f, u.f, y.f, g.size);
  record('swiglu', [g, u], [y], ([dy], ctx) => {
    if (!dy) return;
    const tg = ctx.target(0);
    const tu = ctx.target(1);
    if (tg?.beta === 0 && tu?.beta === 0) {
      k.swigluBackward(g.f, u.f, dy.f, tg.data, tu.data, g.size);
      return;
    }
    const dg = Tensor.empty(g.shape, g.dtype);
    const du = Tensor.empty(g.shape, g.dtype);
    k.swigluBackward(g.f, u.f, dy.f, dg.f, du.f, g.size);
    ctx.pass(0, dg);
    ctx.pass(1, du);
  });
  return y;
}
