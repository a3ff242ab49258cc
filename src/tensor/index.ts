/** The engine's public surface: tensors, autograd, ops, memory scopes, backends, randomness. */
export { Tensor } from './tensor.js';
export type { DType, FloatDType } from './dtype.js';
export { shapeSize, shapeStr, sameShape } from './dtype.js';
export { backward, backwardSegment, record, shouldRecord, clearTape, tapeLength, gradOf, zeroGrad, type BackwardOptions } from './tape.js';
export type { TapeNode, BackwardContext, GradTarget } from './tape-node.js';
export { noGrad, isGradEnabled, withGrad } from './grad-mode.js';
export { checkpoint, type CheckpointPass } from './checkpoint.js';
export { withScope, keep, releaseNow, poolStats, resetPoolPeak, clearPool, allocationTrace } from './memory.js';
export type { Backend, FloatArray, BinaryOp, UnaryOp, ReduceOp } from './backend.js';
export { getBackend, setBackend, resolveBackend, nativeAvailable, kernelsFor, BACKEND_CHOICES, type BackendChoice } from './backends/registry.js';
export { Rng, fillNormal, fillUniform, type RngState } from './random.js';
export { topkRows, argsortDesc, groupBy } from './topk.js';
export * as ops from './ops/index.js';
export type { RotaryFrequencies } from './ops/rope.js';
