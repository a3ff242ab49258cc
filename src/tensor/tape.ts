/**
 * The tape: ops append a node as they run (when grad mode is on and an input requires grad);
 * backward() walks the nodes in reverse, so the order is a valid topological order by
 * construction. Gradients of intermediate tensors live in a map for the duration of the walk;
 * leaves (parameters) accumulate into their persistent `.grad`.
 */
import type { FloatArray } from './backend.js';
import { kernelsFor } from './backends/registry.js';
import { isGradEnabled, noGrad } from './grad-mode.js';
import { addScopeHook, allocate, setAllocationClock, startRelease } from './memory.js';
import type { BackwardContext, GradTarget, TapeNode } from './tape-node.js';
import { Tensor } from './tensor.js';
import { shapeStr } from './dtype.js';

const nodes: TapeNode[] = [];
/** Ops recorded so far (never decreases; stamps pooled buffers, see memory.ts). */
let recorded = 0;
setAllocationClock(() => recorded);

addScopeHook({
  onEnter: () => nodes.length,
  onExit: (mark) => {
    // a scope's buffers are recycled at its end, so nodes recorded inside it must go too
    if (nodes.length > mark) nodes.length = mark;
  },
});

/** Whether an op with these inputs must be recorded. */
export function shouldRecord(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!isGradEnabled()) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/**
 * Records an op. Call after computing the outputs; marks them as requiring grad.
 * `backward` gets the output gradients and a context to write input gradients.
 */
export function record(op: string, inputs: readonly Tensor[], outputs: readonly Tensor[],
  backward: TapeNode['backward']): void {
  if (!shouldRecord(inputs)) return;
  const node: TapeNode = { op, serial: recorded++, inputs, outputs, backward };
  for (const o of outputs) {
    o.requiresGrad = true;
    o.node = node;
  }
  nodes.push(node);
}

export function tapeLength(): number {
  return nodes.length;
}

/** Drops every recorded node (e.g. after a forward pass whose backward is not needed). */
export function clearTape(): void {
  nodes.length = 0;
}

export interface BackwardOptions {
  /**
   * Give buffers of the innermost scope back to the pool as soon as the walk has passed the last op
   * that can read them (forward activations, consumed gradients, backward temporaries): the step's
   * peak is the forward's activations plus the gradients in flight. Every tensor created in the
   * scope since the first op of this graph, the root included, is disposed by the end (read what
   * you need first). Only when `root`'s op is the last one on the tape (no later graph can still
   * need these buffers); else ignored.
   */
  releaseScope?: boolean;
}

/**
 * Backpropagates from a scalar (or from `seed` gradient for a non-scalar root). Leaf tensors that
 * require grad accumulate into `.grad` (allocated outside any scope, so it survives the step).
 * The nodes that fed `root` are removed from the tape.
 */
export function backward(root: Tensor, seed?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require grad (no parameter contributed to it, or it was computed under noGrad)');
  if (seed === undefined && root.size !== 1) throw new Error(`backward(): root must be a scalar, got shape ${shapeStr(root.shape)} (pass a seed gradient)`);
  const grads = new Map<Tensor, Tensor>();
  const seedT = seed ?? Tensor.full(root.shape, 1, root.dtype);
  if (root.isLeaf) {
    accumulateLeaf(root, seedT);
    return;
  }
  grads.set(root, seedT);

  const rootIndex = nodes.lastIndexOf(root.node!);
  if (rootIndex < 0) throw new Error('backward(): the graph of this tensor is no longer on the tape (it was already backpropagated, or its scope ended)');

  const borrowed = new Set<Tensor>();
  const releaser = opts.releaseScope && rootIndex === nodes.length - 1 ? startRelease() : null;
  // a buffer is still needed while a pending gradient views it
  const live = (): ((buf: ArrayBuffer) => boolean) => {
    const held = new Set<ArrayBufferLike>();
    for (const g of grads.values()) if (g.buffer !== null) held.add(g.buffer);
    return (buf) => held.has(buf);
  };
  try {
    // no op before a node was recorded when the buffers taken at or after its serial were taken
    walkDown(rootIndex, 0, grads, borrowed, releaser ? (node) => releaser.release(node.serial, live()) : undefined);
  } finally {
    releaser?.end();
  }
  // everything up to the root has been consumed
  nodes.splice(0, rootIndex + 1);
}

/**
 * Backpropagates through the nodes recorded since `mark` (tapeLength() before they were recorded) only:
 * `outputs[i]` receives `seeds[i]` (null: no gradient), leaves accumulate into `.grad` as in backward(),
 * and the gradients that reached `wanted` (non-leaf tensors that fed the segment) are returned, in order
 * (null where none arrived). The segment's nodes are removed; nodes before `mark` are not touched, so
 * this may run inside an op's backward while an outer walk is under way (activation checkpointing).
 */
export function backwardSegment(outputs: readonly Tensor[], seeds: readonly (Tensor | null)[], mark: number,
  wanted: readonly Tensor[]): (Tensor | null)[] {
  if (mark < 0 || mark > nodes.length) throw new Error(`backwardSegment(): mark ${mark} is outside the tape (length ${nodes.length})`);
  const grads = new Map<Tensor, Tensor>();
  const borrowed = new Set<Tensor>();
  outputs.forEach((o, i) => {
    const g = seeds[i];
    if (!g || !o.requiresGrad) return;
    if (o.isLeaf) accumulateLeaf(o, g);
    else {
      grads.set(o, g);
      borrowed.add(o);
    }
  });
  walkDown(nodes.length - 1, mark, grads, borrowed);
  nodes.length = mark;
  return wanted.map((w) => grads.get(w) ?? null);
}

/**
 * The walk of backward() and backwardSegment(): nodes[from] down to nodes[to], each node that received an
 * output gradient propagating it to its inputs (grads of non-leaf tensors in `grads`, leaves into .grad);
 * `after` runs after every node visited.
 */
function walkDown(from: number, to: number, grads: Map<Tensor, Tensor>, borrowed: Set<Tensor>, after?: (node: TapeNode) => void): void {
  noGrad(() => {
    for (let n = from; n >= to; n--) {
      const node = nodes[n]!;
      let any = false;
      const gouts = node.outputs.map((o) => {
        const g = grads.get(o) ?? null;
        if (g !== null) any = true;
        return g;
      });
      if (any) {
        for (const o of node.outputs) grads.delete(o);
        node.backward(gouts, makeContext(node, grads, borrowed));
      }
      after?.(node);
    }
  });
}

/**
 * `borrowed` holds the tensors whose gradient entry aliases a buffer that another entry may share
 * (handed over by pass()); they are copied before anything is added to them.
 */
function makeContext(node: TapeNode, grads: Map<Tensor, Tensor>, borrowed: Set<Tensor>): BackwardContext {
  const inputs = node.inputs;
  const needs = (i: number): boolean => inputs[i]!.requiresGrad;
  const target = (i: number): GradTarget | null => {
    const x = inputs[i]!;
    if (!x.requiresGrad) return null;
    if (x.isLeaf) {
      if (x.grad === null) x.grad = new Tensor(allocate(x.dtype, x.size, false, true), x.shape);
      if (!x.gradValid) {
        x.gradValid = true;
        return { data: x.grad.data as FloatArray, beta: 0 };
      }
      return { data: x.grad.data as FloatArray, beta: 1 };
    }
    const g = grads.get(x);
    if (g !== undefined) {
      if (!borrowed.has(x)) return { data: g.data as FloatArray, beta: 1 };
      const own = Tensor.empty(x.shape, x.dtype);
      (own.data as FloatArray).set(g.data as FloatArray);
      grads.set(x, own);
      borrowed.delete(x);
      return { data: own.data as FloatArray, beta: 1 };
    }
    const fresh = Tensor.empty(x.shape, x.dtype);
    grads.set(x, fresh);
    return { data: fresh.data as FloatArray, beta: 0 };
  };
  return {
    needs,
    target,
    write(i, kernel) {
      const t = target(i);
      if (t === null) return;
      if (t.beta === 0) {
        kernel(t.data);
        return;
      }
      const tmp = Tensor.empty(inputs[i]!.shape, inputs[i]!.dtype);
      kernel(tmp.data as FloatArray);
      kernelsFor(tmp).axpby(1, tmp.data as FloatArray, 1, t.data, t.data.length);
    },
    pass(i, grad) {
      const x = inputs[i]!;
      if (!x.requiresGrad) return;
      if (!x.isLeaf && !grads.has(x)) {
        grads.set(x, grad.shape.length === x.shape.length && grad.shape.every((d, j) => d === x.shape[j])
          ? grad
          : new Tensor(grad.data, x.shape));
        borrowed.add(x);
        return;
      }
      const t = target(i)!;
      const k = kernelsFor(grad);
      k.axpby(1, grad.data as FloatArray, t.beta, t.data, t.data.length);
    },
  };
}

function accumulateLeaf(x: Tensor, g: Tensor): void {
  if (x.grad === null) x.grad = new Tensor(allocate(x.dtype, x.size, false, true), x.shape);
  kernelsFor(g).axpby(1, g.data as FloatArray, x.gradValid ? 1 : 0, x.grad.data as FloatArray, x.size);
  x.gradValid = true;
}

/** The gradient a leaf received since its last zeroGrad, or null if none. */
export function gradOf(x: Tensor): Tensor | null {
  return x.gradValid ? x.grad : null;
}

/**
 * Forgets the gradients of these leaves without touching memory: the next backward overwrites
 * the buffer instead of adding to it (as torch's zero_grad(set_to_none=True) does).
 */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) p.gradValid = false;
}

export type { FloatArray };

