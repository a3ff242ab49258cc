import { backward, noGrad, ops, Rng, Tensor, withScope, zeroGrad } from '../../src/tensor/index.js';

/** A float64 tensor of N(0, std^2) (or U(lo, hi)) values that requires grad. */
export function rand64(shape: number[], rng: Rng, opts: { std?: number; lo?: number; hi?: number; grad?: boolean } = {}): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = opts.lo !== undefined ? opts.lo + (opts.hi! - opts.lo) * rng.next() : rng.normal() * (opts.std ?? 1);
  }
  return new Tensor(d, shape, opts.grad ?? true);
}

export interface GradcheckResult {
  /** max over inputs of ||analytic - numeric||_inf / max(||numeric||_inf, tiny) */
  maxRelError: number;
  perInput: number[];
}

/**
 * Central finite differences in float64 for every input that requires grad, against the tape's
 * gradients. The scalar is sum(f(x) * R) for a fixed random R, so every output element matters.
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], seed = 7, eps = 1e-6): GradcheckResult {
  const rng = new Rng(seed);
  let proj: Float64Array | null = null;
  const scalar = (): Tensor => {
    const y = f(...inputs);
    if (proj === null) {
      proj = new Float64Array(y.size);
      for (let i = 0; i < y.size; i++) proj[i] = rng.normal();
    }
    return ops.sum(ops.mul(y, new Tensor(proj, y.shape)));
  };
  const params = inputs.filter((t) => t.requiresGrad);
  zeroGrad(params);
  withScope(() => {
    const s = scalar();
    backward(s);
  });
  const perInput: number[] = [];
  for (const x of params) {
    const analytic = x.gradValid && x.grad ? Float64Array.from(x.grad.data) : new Float64Array(x.size);
    const numeric = new Float64Array(x.size);
    const data = x.data as Float64Array;
    for (let i = 0; i < x.size; i++) {
      const orig = data[i]!;
      data[i] = orig + eps;
      const fp = withScope(() => noGrad(() => scalar().item()));
      data[i] = orig - eps;
      const fm = withScope(() => noGrad(() => scalar().item()));
      data[i] = orig;
      numeric[i] = (fp - fm) / (2 * eps);
    }
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < x.size; i++) {
      diff = Math.max(diff, Math.abs(analytic[i]! - numeric[i]!));
      scale = Math.max(scale, Math.abs(numeric[i]!));
    }
    perInput.push(diff / Math.max(scale, 1e-8));
  }
  return { maxRelError: Math.max(0, ...perInput), perInput };
}
