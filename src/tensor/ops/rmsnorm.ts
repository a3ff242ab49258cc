import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, lastDim } from './shape-utils.js';

/** RMSNorm over the last dim (Llama: w * x / sqrt(mean(x^2) + eps), fp32). */
export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  assertFloat('rmsnorm', x, w);
  const D = lastDim(x);
  if (w.rank !== 1 || w.shape[0] !== D) throw new Error(`rmsnorm: weight${w.name ? ` ${w.name}` : ''} has shape ${shapeStr(w.shape)}, expected [${D}]`);
  const rows = D === 0 ? 0 : x.size / D;
  const k = kernelsFor(x, w);
  const y = Tensor.empty(x.shape, x.dtype);
  const rstd = Tensor.empty([rows], x.dtype);
  k.rmsnormForward(x.f, w.f, eps, rows, D, y.f, rstd.f);
  record('rmsnorm', [x, w], [y], ([dy], ctx) => {
    if (!dy) return;
    const tw = ctx.target(1);
    let dw = tw?.data;
    if (tw && tw.beta === 0) k.fill(tw.data, 0, D);
    if (!dw) dw = Tensor.zeros([D], x.dtype).f;
    const tx = ctx.target(0);
    if (tx && tx.beta === 0) k.rmsnormBackward(dy.f, x.f, w.f, rstd.f, rows, D, tx.data, dw);
    else {
      const dx = Tensor.empty(x.shape, x.dtype);
      k.rmsnormBackward(dy.f, x.f, w.f, rstd.f, rows, D, dx.f, dw);
      if (tx) k.axpby(1, dx.f, 1, tx.data, x.size);
    }
  });
  return y;
}
