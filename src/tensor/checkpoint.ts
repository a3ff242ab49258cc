/**
 * Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; what
 * torch.utils.checkpoint and transformers' `gradient_checkpointing_enable()` do): `fn` runs once without
 * recording, in its own allocation scope, so only its outputs outlive it; the backward runs `fn` again with
 * recording on over the same inputs and backpropagates through that recomputation alone (backwardSegment).
 * A segment's activations then exist only while its own forward runs and again while its backward runs:
 * one decoder layer's worth at a time instead of every layer's, for one more forward of compute.
 *
 * `fn(inputs, pass)` must compute the same values on both passes ('forward', then 'recompute'): the caller
 * replays random draws (dropout masks, router noise) from the state they had on the forward. `params` are
 * the parameters `fn` reads that may need gradients (they accumulate into .grad during the recompute's
 * backward, as without checkpointing); `inputs` are the other tensors it reads that may carry gradients.
 * Every tensor `fn` returns must be computed inside it (not an input passed through).
 */
import { isGradEnabled, noGrad, withGrad } from './grad-mode.js';
import { withScope } from './memory.js';
import { backwardSegment, record, tapeLength } from './tape.js';
import { Tensor } from './tensor.js';

export type CheckpointPass = 'forward' | 'recompute';

export function checkpoint(fn: (inputs: readonly Tensor[], pass: CheckpointPass) => Tensor[], inputs: readonly Tensor[],
  params: readonly Tensor[]): Tensor[] {
  const needed = isGradEnabled() && (inputs.some((t) => t.requiresGrad) || params.some((p) => p.requiresGrad));
  if (!needed) return fn(inputs, 'forward');
  const outputs = withScope(() => noGrad(() => fn(inputs, 'forward')));
  for (const o of outputs) {
    if (inputs.includes(o)) throw new Error('checkpoint: fn returned one of its inputs; return only tensors it computes');
  }
  record('checkpoint', [...inputs, ...params], outputs, (gradOutputs, ctx) => {
    const inputGrads = withGrad(() => withScope(() => {
      // the recomputation reads views of the inputs that collect their gradients (not leaves: nothing persistent)
      const views = inputs.map((x) => (x.requiresGrad ? gradientCollector(x) : x));
      const mark = tapeLength();
      const again = fn(views, 'recompute');
      if (again.length !== outputs.length) throw new Error(`checkpoint: the recomputation returned ${again.length} tensors, the forward ${outputs.length}`);
      return backwardSegment(again, gradOutputs, mark, views);
    }));
    inputGrads.forEach((g, i) => {
      if (g !== null && ctx.needs(i)) ctx.pass(i, g);
    });
  });
  return outputs;
}

/** A view of `x` (same data) that requires grad and is not a leaf, so a backward walk leaves its gradient in the map. */
function gradientCollector(x: Tensor): Tensor {
  const v = new Tensor(x.data, x.shape);
  v.requiresGrad = true;
  v.node = COLLECTOR;
  return v;
}

/** The node of every gradient collector: never on the tape, never walked. */
const COLLECTOR = { op: 'checkpoint-input', serial: -1, inputs: [], outputs: [], backward: () => undefined };
