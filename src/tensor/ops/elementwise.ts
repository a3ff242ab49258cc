import type { BinaryOp, UnaryOp } from '../backend.js';
import { kernelsFor } from '../backends/registry.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { sumToShape } from './reduce.js';
import { assertFloat, broadcastShapes } from './shape-utils.js';

type Operand = Tensor | number;

function asTensor(v: Operand, like: Tensor): Tensor {
  if (typeof v !== 'number') return v;
  const t = Tensor.empty([], like.dtype);
  t.f[0] = v;
  return t;
}

function binaryOp(op: Exclude<BinaryOp, 'max' | 'min'>, aIn: Operand, bIn: Operand): Tensor {
  const a = typeof aIn === 'number' ? asTensor(aIn, bIn as Tensor) : aIn;
  const b = asTensor(bIn, a);
  assertFloat(op, a, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const k = kernelsFor(a, b);
  const y = Tensor.empty(shape, a.dtype);
  k.binary(op, a.f, a.shape, b.f, b.shape, y.f, shape);
  record(op, [a, b], [y], ([dy], ctx) => {
    if (!dy) return;
    const grads: [Tensor | null, Tensor | null] = [null, null];
    if (op === 'add' || op === 'sub') {
      if (ctx.needs(0)) grads[0] = dy;
      if (ctx.needs(1)) {
        if (op === 'add') grads[1] = dy;
        else {
          const g = Tensor.empty(dy.shape, dy.dtype);
          k.unary('neg', dy.f, g.f, dy.size);
          grads[1] = g;
        }
      }
    } else if (op === 'mul') {
      for (const [i, other] of [[0, b], [1, a]] as const) {
        if (!ctx.needs(i)) continue;
        const g = Tensor.empty(shape, dy.dtype);
        k.binary('mul', dy.f, shape, other.f, other.shape, g.f, shape);
        grads[i] = g;
      }
    } else {
      // div: da = dy / b, db = -dy * a / b^2 = -(dy / b) * y
      const q = Tensor.empty(shape, dy.dtype);
      k.binary('div', dy.f, shape, b.f, b.shape, q.f, shape);
      if (ctx.needs(0)) grads[0] = q;
      if (ctx.needs(1)) {
        const g = Tensor.empty(shape, dy.dtype);
        k.binary('mul', q.f, shape, y.f, shape, g.f, shape);
        k.unary('neg', g.f, g.f, g.size);
        grads[1] = g;
      }
    }
    for (const i of [0, 1] as const) {
      const g = grads[i];
      if (g) ctx.pass(i, sumToShape(g, [a, b][i]!.shape));
    }
  });
  return y;
}

/** a + b with numpy broadcasting (either may be a number). */
export const add = (a: Operand, b: Operand): Tensor => binaryOp('add', a, b);
/** a - b with numpy broadcasting. */
export const sub = (a: Operand, b: Operand): Tensor => binaryOp('sub', a, b);
/** a * b with numpy broadcasting. */
export const mul = (a: Operand, b: Operand): Tensor => binaryOp('mul', a, b);
/** a / b with numpy broadcasting. */
export const div = (a: Operand, b: Operand): Tensor => binaryOp('div', a, b);

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  assertFloat(op, x);
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.unary(op, x.f, y.f, x.size);
  record(op, [x], [y], ([dy], ctx) => {
    if (!dy) return;
    ctx.write(0, (out) => k.unaryBackward(op, x.f, y.f, dy.f, out, x.size));
  });
  return y;
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);

/** s * x for a number s (one pass, no broadcast machinery). */
export function scale(x: Tensor, s: number): Tensor {
  assertFloat('scale', x);
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.axpby(s, x.f, 0, y.f, x.size);
  record('scale', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    const t = ctx.target(0);
    if (t) k.axpby(s, dy.f, t.beta, t.data, x.size);
  });
  return y;
}
