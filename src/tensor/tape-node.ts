import type { FloatArray } from './backend.js';
import type { Tensor } from './tensor.js';

/**
 * Where an op's backward writes the gradient of one input. With beta = 0 the buffer is fresh and
 * must be fully written; with beta = 1 it already holds gradient and the op must add to it
 * (kernels with a beta / accumulate argument do this without an extra pass).
 */
export interface GradTarget {
  readonly data: FloatArray;
  readonly beta: 0 | 1;
}

/** What an op's backward receives besides the output gradients. */
export interface BackwardContext {
  /** True when input i needs a gradient. */
  needs(i: number): boolean;
  /** The buffer to write input i's gradient into (null when it needs none). */
  target(i: number): GradTarget | null;
  /**
   * Computes a gradient with a kernel that can only write (not add): writes straight into the
   * target when it is fresh, else into a temporary that is then added.
   */
  write(i: number, kernel: (out: FloatArray) => void): void;
  /** Hands input i a gradient tensor as is (no copy when the input has no gradient yet). */
  pass(i: number, grad: Tensor): void;
}

/** One recorded op on the tape. */
export interface TapeNode {
  readonly op: string;
  /** The number of ops recorded before this one (the allocation clock when it was recorded). */
  readonly serial: number;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
  /** Propagates the output gradients (null where an output received none) to the inputs. */
  backward(gradOutputs: readonly (Tensor | null)[], ctx: BackwardContext): void;
}
