import { shapeSize, shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';

/** A view with a new shape over the same storage (one dim may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertLive();
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const known = s.reduce((a, d, i) => (i === infer ? a : a * d), 1);
    s[infer] = known === 0 ? 0 : x.size / known;
  }
  if (shapeSize(s) !== x.size || s.some((d) => !Number.isInteger(d))) {
    throw new Error(`reshape: cannot view ${shapeStr(x.shape)} (${x.size} elements) as ${shapeStr(shape)}`);
  }
  const y = new Tensor(x.data, s);
  record('reshape', [x], [y], ([dy], ctx) => {
    if (dy) ctx.pass(0, new Tensor(dy.data, x.shape));
  });
  return y;
}
