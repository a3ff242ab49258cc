/**
 * Every op's backward against central finite differences in float64 on the js backend
 * (relative error < 1e-4), on random small shapes: GQA ratios 1 and 2, odd sequence lengths,
 * ignore-index targets, broadcasting.
 */
import { describe, expect, it } from 'vitest';
import { ops, Rng, Tensor } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';

const TOL = 1e-4;
const covered = new Set<string>();

function check(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], ops_: string[] = [name]): void {
  for (const o of ops_) covered.add(o);
  const r = gradcheck(f, inputs);
  expect(r.perInput.length, `${name}: no input requires grad`).toBeGreaterThan(0);
  expect(r.maxRelError, `${name}: per-input relative errors ${r.perInput.map((e) => e.toExponential(2)).join(', ')}`).toBeLessThan(TOL);
}

function ids(values: number[], shape?: number[]): Tensor {
  return new Tensor(Int32Array.from(values), shape ?? [values.length]);
}

describe('gradients match finite differences (float64, js backend)', () => {
  const rng = new Rng(1234);

  it('linear with and without bias, odd shapes', () => {
    check('linear', (x, w, b) => ops.linear(x!, w!, b!), [rand64([2, 3, 5], rng), rand64([7, 5], rng), rand64([7], rng)]);
    check('linear', (x, w) => ops.linear(x!, w!), [rand64([1, 17], rng), rand64([4, 17], rng)]);
  });

  it('matmul in all four transpose combinations', () => {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const a = rand64(ta ? [4, 3] : [3, 4], rng);
      const b = rand64(tb ? [5, 4] : [4, 5], rng);
      check('matmul', (x, y) => ops.matmul(x!, y!, ta, tb), [a, b]);
    }
  });

  it('groupedLinear with an empty group', () => {
    const off = Int32Array.from([0, 2, 2, 5]);
    check('groupedLinear', (x, a, b, c) => ops.groupedLinear(x!, [a!, b!, c!], off),
      [rand64([5, 3], rng), rand64([4, 3], rng), rand64([4, 3], rng), rand64([4, 3], rng)]);
    // two weight sets of different widths on the same rows (an expert's w1 and w3), combined
    check('groupedLinear', (x, a, b, c, d) => {
      const [p, q] = ops.groupedLinearMany(x!, [[a!, b!], [c!, d!]], Int32Array.from([0, 3, 5])) as [Tensor, Tensor];
      return ops.concat([p, q], 1);
    }, [rand64([5, 3], rng), rand64([4, 3], rng), rand64([4, 3], rng), rand64([2, 3], rng), rand64([2, 3], rng)]);
  });

  it('loraAdd (fused LoRA update)', () => {
    check('loraAdd', (y, x, a, b) => ops.loraAdd(y!, x!, a!, b!, 1.75),
      [rand64([2, 3, 6], rng), rand64([2, 3, 5], rng), rand64([4, 5], rng), rand64([6, 4], rng)]);
  });

  it('groupedLoraAdd (the fused LoRA update of every expert) with an empty group, copy and in place', () => {
    const off = Int32Array.from([0, 2, 2, 5]);
    const inputs = [rand64([5, 6], rng), rand64([5, 4], rng), rand64([3, 4], rng), rand64([3, 4], rng), rand64([3, 4], rng),
      rand64([6, 3], rng), rand64([6, 3], rng), rand64([6, 3], rng)];
    check('groupedLoraAdd', (y, x, a0, a1, a2, b0, b1, b2) => ops.groupedLoraAdd(y!, x!, [a0!, a1!, a2!], [b0!, b1!, b2!], off, 1.5), inputs);
    // in place onto a fresh op output (what the LoRA runner hands it)
    check('groupedLoraAdd', (y, x, a0, a1, a2, b0, b1, b2) => ops.groupedLoraAdd(ops.scale(y!, 1), x!, [a0!, a1!, a2!], [b0!, b1!, b2!], off, 1.5, { inPlace: true }), inputs);
  });

  it('loraAdd in place onto a fresh op output', () => {
    check('loraAdd', (y, x, a, b) => ops.loraAdd(ops.scale(y!, 1), x!, a!, b!, 1.75, { inPlace: true }),
      [rand64([2, 3, 6], rng), rand64([2, 3, 5], rng), rand64([4, 5], rng), rand64([6, 4], rng)]);
  });

  it('embedding with repeated ids', () => {
    const w = rand64([6, 4], rng);
    check('embedding', (w_) => ops.embedding(ids([1, 3, 1, 5, 0], [5]), w_!), [w]);
  });

  it('rmsnorm', () => {
    check('rmsnorm', (x, w) => ops.rmsnorm(x!, w!, 1e-5), [rand64([3, 5, 8], rng), rand64([8], rng, { lo: 0.5, hi: 1.5 })]);
  });

  it('rope with offsets and explicit positions', () => {
    check('rope', (x) => ops.rope(x!, 10000, 0), [rand64([2, 3, 2, 8], rng)]);
    check('rope', (x) => ops.rope(x!, 1e6, 7), [rand64([1, 5, 3, 4], rng)]);
    check('rope', (x) => ops.rope(x!, 500, Int32Array.from([4, 0, 9])), [rand64([1, 3, 1, 6], rng)]);
  });

  it('attention: GQA ratio 1 and 2, causal and not, odd lengths, KV offset', () => {
    check('attention', (q, k, v) => ops.attention(q!, k!, v!), [rand64([1, 5, 2, 4], rng), rand64([1, 5, 2, 4], rng), rand64([1, 5, 2, 4], rng)]);
    check('attention', (q, k, v) => ops.attention(q!, k!, v!), [rand64([2, 7, 4, 4], rng), rand64([2, 7, 2, 4], rng), rand64([2, 7, 2, 4], rng)]);
    check('attention', (q, k, v) => ops.attention(q!, k!, v!, { causal: false }), [rand64([1, 3, 2, 6], rng), rand64([1, 4, 1, 6], rng), rand64([1, 4, 1, 6], rng)]);
    check('attention', (q, k, v) => ops.attention(q!, k!, v!, { causal: true }), [rand64([1, 3, 2, 4], rng), rand64([1, 6, 2, 4], rng), rand64([1, 6, 2, 4], rng)]);
  });

  it('swiglu, softmax, logSoftmax', () => {
    check('swiglu', (g, u) => ops.swiglu(g!, u!), [rand64([3, 7], rng), rand64([3, 7], rng)]);
    check('softmax', (x) => ops.softmax(x!), [rand64([4, 5], rng, { std: 2 })]);
    check('logSoftmax', (x) => ops.logSoftmax(x!), [rand64([4, 5], rng, { std: 2 })]);
  });

  it('crossEntropy with ignore-index rows, mean / sum / none', () => {
    const t = ids([2, -100, 0, 4, -100, 1]);
    check('crossEntropy', (x) => ops.crossEntropy(x!, t), [rand64([6, 5], rng, { std: 2 })]);
    check('crossEntropy', (x) => ops.crossEntropy(x!, t, { reduction: 'sum' }), [rand64([2, 3, 5], rng)]);
    check('crossEntropy', (x) => ops.crossEntropy(x!, t, { reduction: 'none' }), [rand64([6, 5], rng)]);
  });

  it('gatherRows, scatterAddRows (with weights and duplicate targets), takeAlongRows', () => {
    check('gatherRows', (x) => ops.gatherRows(x!, Int32Array.from([2, 0, 2, 3])), [rand64([4, 3], rng)]);
    check('scatterAddRows', (s, w) => ops.scatterAddRows(s!, Int32Array.from([1, 0, 1, 4]), 5, w!), [rand64([4, 3], rng), rand64([4], rng)]);
    check('scatterAddRows', (s) => ops.scatterAddRows(s!, Int32Array.from([2, 2]), 3), [rand64([2, 5], rng)]);
    check('takeAlongRows', (x) => ops.takeAlongRows(x!, ids([0, 2, 1, 1, 3, 0], [3, 2])), [rand64([3, 4], rng)]);
  });

  it('routeTopK: probabilities, renormalised or raw gates of the true rows, null-row sums', () => {
    // 5 tokens, 4 true + 2 null rows, top-3: random logits (no near-ties, so the choices hold under the steps)
    for (const normalize of [true, false]) {
      check('routeTopK', (x) => {
        const r = ops.routeTopK(x!, { trueColumns: 4, k: 3, normalize, nullSums: true });
        return ops.concat([ops.reshape(r.probs, [30]), r.gates, r.nullSums!], 0);
      }, [rand64([5, 6], rng, { std: 2 })]);
    }
  });

  it('binary ops with broadcasting', () => {
    for (const name of ['add', 'sub', 'mul', 'div'] as const) {
      const f = ops[name];
      const pos = { lo: 0.5, hi: 2 };
      check(name, (a, b) => f(a!, b!), [rand64([3, 4], rng), rand64([3, 4], rng, pos)]);
      check(name, (a, b) => f(a!, b!), [rand64([2, 3, 4], rng), rand64([4], rng, pos)]);
      check(name, (a, b) => f(a!, b!), [rand64([3, 1], rng), rand64([1, 4], rng, pos)]);
      check(name, (a, b) => f(a!, b!), [rand64([2, 1, 4], rng), rand64([3, 1], rng, pos)]);
      check(name, (a) => f(a!, 1.7), [rand64([5], rng)]);
    }
  });

  it('unary ops and scale', () => {
    const pos = { lo: 0.3, hi: 2 };
    for (const name of ['neg', 'exp', 'square', 'silu', 'sigmoid', 'tanh'] as const) {
      check(name, (x) => ops[name](x!), [rand64([3, 5], rng)]);
    }
    for (const name of ['log', 'sqrt', 'rsqrt'] as const) check(name, (x) => ops[name](x!), [rand64([3, 5], rng, pos)]);
    // abs and relu away from the kink
    check('abs', (x) => ops.abs(x!), [new Tensor(Float64Array.from([0.5, -0.7, 1.2, -2]), [4], true)]);
    check('relu', (x) => ops.relu(x!), [new Tensor(Float64Array.from([0.5, -0.7, 1.2, -2]), [4], true)]);
    check('scale', (x) => ops.scale(x!, -2.5), [rand64([2, 3], rng)]);
  });

  it('sum and mean over an axis, all, keepDims', () => {
    check('sum', (x) => ops.sum(x!, 1), [rand64([2, 3, 4], rng)]);
    check('sum', (x) => ops.sum(x!), [rand64([2, 3], rng)]);
    check('mean', (x) => ops.mean(x!, -1, true), [rand64([2, 3, 4], rng)]);
    check('mean', (x) => ops.mean(x!, 0), [rand64([5, 3], rng)]);
  });

  it('reshape, concat, slice, dropout', () => {
    check('reshape', (x) => ops.mul(ops.reshape(x!, [3, -1]), ops.reshape(x!, [3, 4])), [rand64([2, 6], rng)]);
    check('concat', (a, b) => ops.concat([a!, b!], 1), [rand64([2, 3], rng), rand64([2, 2], rng)]);
    check('concat', (a, b) => ops.concat([a!, b!, a!], 0), [rand64([1, 3], rng), rand64([2, 3], rng)]);
    check('slice', (x) => ops.slice(x!, 1, 1, 3), [rand64([2, 4, 2], rng)]);
    const maskSeed = 99;
    check('dropout', (x) => ops.dropout(x!, 0.4, new Rng(maskSeed)), [rand64([4, 6], rng)]);
  });

  it('clamp (values away from the bounds: the gradient is 1 inside, 0 where clipped)', () => {
    const x = rand64([3, 5], rng);
    for (let i = 0; i < x.size; i++) if (Math.abs(Math.abs(x.f[i]!) - 0.5) < 0.05) x.f[i] = 0.2;
    check('clamp', (a) => ops.mul(ops.clamp(a!, -0.5, 0.5), a!), [x]);
  });

  it('a gradient that reaches one tensor along several paths accumulates correctly', () => {
    // x is used by add (aliased gradient), mul and softmax: the aliasing must not corrupt sums
    check('add', (x, y) => ops.mul(ops.add(x!, y!), ops.softmax(ops.add(x!, ops.mul(x!, y!)))), [rand64([3, 4], rng), rand64([3, 4], rng)]);
  });

  it('every registered op has a gradient check', () => {
    const missing = ops.OP_NAMES.filter((n) => !covered.has(n));
    expect(missing).toEqual([]);
  });
});
