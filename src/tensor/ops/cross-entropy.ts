import { kernelsFor } from '../backends/registry.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat, lastDim } from './shape-utils.js';

export interface CrossEntropyOptions {
  /** Targets equal to this are not scored (transformers uses -100). */
  ignoreIndex?: number;
  /** 'mean' over scored rows (0 when none is scored), 'sum', or 'none' (per-row losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Fused log-softmax + negative log-likelihood: logits [..., V], targets int32 [...] -> scalar
 * (or per-row losses). Never materialises a one-hot or a log-probability tensor.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  assertFloat('crossEntropy', logits);
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const V = lastDim(logits);
  const rows = V === 0 ? 0 : logits.size / V;
  const tg = targets.i32;
  if (tg.length !== rows) throw new Error(`crossEntropy: ${tg.length} targets for logits ${shapeStr(logits.shape)} (${rows} rows)`);
  const k = kernelsFor(logits);
  const losses = Tensor.empty(logits.shape.slice(0, -1), logits.dtype);
  const lse = Tensor.empty([rows], logits.dtype);
  k.crossEntropyForward(logits.f, tg, rows, V, ignore, losses.f, lse.f);
  let count = 0;
  for (let r = 0; r < rows; r++) if (tg[r] !== ignore) count++;

  let out: Tensor;
  if (reduction === 'none') out = losses;
  else {
    let s = 0;
    const lf = losses.f;
    for (let r = 0; r < rows; r++) s += lf[r]!;
    out = Tensor.empty([], logits.dtype);
    out.f[0] = reduction === 'sum' ? s : count === 0 ? 0 : s / count;
  }
  record('crossEntropy', [logits], [out], ([dout], ctx) => {
    if (!dout) return;
    let dl: Tensor;
    if (reduction === 'none') dl = dout;
    else {
      const scale = reduction === 'sum' ? dout.f[0]! : count === 0 ? 0 : dout.f[0]! / count;
      dl = Tensor.full([rows], scale, logits.dtype);
    }
    ctx.write(0, (o) => k.crossEntropyBackward(logits.f, tg, lse.f, dl.f, rows, V, ignore, o));
  });
  return out;
}
