import { kernelsFor } from '../backends/registry.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, lastDim } from './shape-utils.js';

/** Softmax over the last dim (router probabilities are computed in float32 or better). */
export function softmax(x: Tensor): Tensor {
  assertFloat('softmax', x);
  const cols = lastDim(x);
  const rows = cols === 0 ? 0 : x.size / cols;
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.softmaxForward(x.f, rows, cols, y.f);
  record('softmax', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    ctx.write(0, (out) => k.softmaxBackward(y.f, dy.f, rows, cols, out));
  });
  return y;
}

/** Log-softmax over the last dim. */
export function logSoftmax(x: Tensor): Tensor {
  assertFloat('logSoftmax', x);
  const cols = lastDim(x);
  const rows = cols === 0 ? 0 : x.size / cols;
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.logSoftmaxForward(x.f, rows, cols, y.f);
  record('logSoftmax', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    ctx.write(0, (out) => k.logSoftmaxBackward(y.f, dy.f, rows, cols, out));
  });
  return y;
}
