/**
 * The one list of differentiable ops. Each op file computes its forward with the kernels of the
 * active backend and records its backward on the tape. `OP_NAMES` is what the gradient-check and
 * backend-equivalence tests iterate over: a new op is added here and gets tested there.
 */
export { linear, matmul } from './linear.js';
export { groupedLinear, groupedLinearMany } from './grouped-linear.js';
export { loraAdd } from './lora-add.js';
export { groupedLoraAdd, type LoraAddOptions, type GroupedLoraAddOptions } from './grouped-lora-add.js';
export { embedding } from './embedding.js';
export { rmsnorm } from './rmsnorm.js';
export { rope, ropeTables, type RotaryFrequencies } from './rope.js';
export { attention, type AttentionOptions } from './attention.js';
export { swiglu } from './swiglu.js';
export { softmax, logSoftmax } from './softmax.js';
export { crossEntropy, type CrossEntropyOptions } from './cross-entropy.js';
export { gatherRows, scatterAddRows, takeAlongRows } from './indexing.js';
export { routeTopK, type TopKRoute, type TopKRouteOptions } from './route-top-k.js';
export { add, sub, mul, div, neg, exp, log, sqrt, rsqrt, square, abs, silu, sigmoid, relu, tanh, scale } from './elementwise.js';
export { sum, mean, maxAlong, sumToShape } from './reduce.js';
export { reshape } from './reshape.js';
export { concat, slice } from './concat.js';
export { dropout } from './dropout.js';
export { clamp } from './clamp.js';

export const OP_NAMES = [
  'linear', 'matmul', 'groupedLinear', 'loraAdd', 'groupedLoraAdd', 'embedding', 'rmsnorm', 'rope', 'attention', 'swiglu', 'softmax', 'logSoftmax',
  'crossEntropy', 'gatherRows', 'scatterAddRows', 'takeAlongRows', 'routeTopK', 'add', 'sub', 'mul', 'div', 'neg', 'exp',
  'log', 'sqrt', 'rsqrt', 'square', 'abs', 'silu', 'sigmoid', 'relu', 'tanh', 'scale', 'sum', 'mean', 'reshape',
  'concat', 'slice', 'dropout', 'clamp',
] as const;
export type OpName = (typeof OP_NAMES)[number];
