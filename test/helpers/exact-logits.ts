/**
 * Router logits whose softmax (js backend, float64) is EXACTLY the given dyadic probabilities, so
 * hand-worked routing tests can hit cumulative sums equal to p or t without float noise. Each
 * row's largest probability must be a power of two (the kernel multiplies by 1 / sum, exact only
 * then); the max logit is 0 and every other logit x satisfies Math.exp(x) === p / p_max, found by
 * stepping through the doubles next to log(p / p_max).
 */
import type { Router, RoutingRecord } from '../../src/routers/router.js';
import { ops, Rng, Tensor } from '../../src/tensor/index.js';

function nextDouble(x: number, dir: 1 | -1): number {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigUint64(0);
  // for negative x, a larger bit pattern is a more negative number
  const step = (x < 0 ? -dir : dir) as 1 | -1;
  buf.setBigUint64(0, bits + BigInt(step));
  return buf.getFloat64(0);
}

function exactLog(r: number): number {
  if (r === 1) return 0;
  const x0 = Math.log(r);
  let up = x0;
  let down = x0;
  for (let i = 0; i < 64; i++) {
    if (Math.exp(up) === r) return up;
    if (Math.exp(down) === r) return down;
    up = nextDouble(up, 1);
    down = nextDouble(down, -1);
  }
  throw new Error(`exactLogits: no double x with exp(x) === ${r}`);
}

/** Logits [T, R] (float64, requiresGrad optional) whose softmax is exactly `probs`. */
export function exactLogits(probs: number[][], requiresGrad = false): Tensor {
  const T = probs.length;
  const R = probs[0]!.length;
  const data = new Float64Array(T * R);
  probs.forEach((row, t) => {
    if (row.length !== R) throw new Error('exactLogits: ragged rows');
    const sum = row.reduce((a, b) => a + b, 0);
    if (sum !== 1) throw new Error(`exactLogits: row ${t} sums to ${sum}, not 1`);
    const pmax = Math.max(...row);
    if (2 ** Math.round(Math.log2(pmax)) !== pmax) throw new Error(`exactLogits: row ${t} max ${pmax} is not a power of two`);
    row.forEach((p, r) => {
      data[t * R + r] = p === 0 ? -Infinity : exactLog(p / pmax);
    });
  });
  const logits = new Tensor(data, [T, R], requiresGrad);
  const check = ops.softmax(logits).f;
  probs.forEach((row, t) => row.forEach((p, r) => {
    if (check[t * R + r] !== p) throw new Error(`exactLogits: softmax[${t}][${r}] = ${check[t * R + r]}, wanted ${p}`);
  }));
  return logits;
}

/**
 * Routing records of one router over layers of exact probabilities (layers[l] = the rows of layer l), as the
 * MoE blocks would append them in training (rng seeded 0): the input of hand-worked aux-loss tests.
 */
export function exactRoutingRecords(router: Router, N: number, layers: number[][][]): RoutingRecord[] {
  return layers.map((probs, layer) => ({
    layer,
    module: `model.layers.${layer}.block_sparse_moe`,
    routing: router.route(exactLogits(probs), N, { training: true, rng: new Rng(0), layer }),
  }));
}
