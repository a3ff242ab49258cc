/**
 * One projection of all experts of an MoE layer as one grouped product: the gathered rows x [P, in]
 * in expert order (offsets[e] .. offsets[e + 1] are expert e's) through each expert's linear.
 * Plain bias-free Linear layers are grouped here (ops.groupedLinear); layers defined above the
 * models floor register a runner for their kind when their module is imported (4-bit NF4 experts:
 * src/quant; LoRA-wrapped experts, whose base is again grouped: src/lora), so an MoE step's cost
 * follows its routed (token, expert) pairs whatever its experts are. A set no runner takes returns
 * null and the block runs its experts one by one (the same function).
 */
import { ops, type FloatArray, type Tensor } from '../tensor/index.js';
import type { ForwardContext } from './forward-context.js';
import { Linear, type LinearLike } from './linear.js';

/** Computes a run's input x again into `out` (same shape), so a runner need not keep x for its backward. */
export type InputAgain = (out: FloatArray) => void;

export interface GroupedLinearRunner {
  /** Short name (tests, profiles). */
  readonly name: string;
  /** Whether this runner computes the set (all layers of its kind, compatible shapes and settings). */
  accepts(layers: readonly LinearLike[], ctx?: ForwardContext): boolean;
  /**
   * Whether the backward of run() reads x's values when run is given `again` (a float weight's
   * gradient does; a frozen 4-bit base's does not; LoRA computes x again). When no runner of a
   * projection keeps x, the MoE layer gives x's memory back right after the forward products.
   */
  keepsInput(layers: readonly LinearLike[], ctx?: ForwardContext): boolean;
  run(layers: readonly LinearLike[], x: Tensor, offsets: Int32Array, ctx?: ForwardContext, again?: InputAgain): Tensor;
}

const plainRunner: GroupedLinearRunner = {
  name: 'linear',
  accepts: (layers) => layers.every((l) => l instanceof Linear && l.bias === null),
  keepsInput: () => true,
  run: (layers, x, offsets) => ops.groupedLinear(x, layers.map((l) => (l as Linear).weight), offsets),
};

const runners: GroupedLinearRunner[] = [plainRunner];

/** Adds (or replaces, by name) a runner. */
export function registerGroupedLinearRunner(r: GroupedLinearRunner): void {
  const i = runners.findIndex((x) => x.name === r.name);
  if (i >= 0) runners[i] = r;
  else runners.push(r);
}

/** The runner that computes this set of layers, or null. */
export function groupedLinearRunner(layers: readonly LinearLike[], ctx?: ForwardContext): GroupedLinearRunner | null {
  if (layers.length === 0) return null;
  return runners.find((r) => r.accepts(layers, ctx)) ?? null;
}
