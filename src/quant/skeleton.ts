/**
 * A model skeleton: the module tree a model directory loads into, built from config.json and the
 * safetensors headers alone. Every tensor's name and shape is checked against the headers exactly
 * as loading checks them (same one-line errors: a missing tensor, a wrong shape, tensors the
 * architecture does not use, a 4-bit tensor of the wrong shape), but no weight is read: every
 * parameter is a view of one shared zero buffer, which occupies no memory until written (large
 * allocations are zero pages). Preflight checks run surgery, LoRA, routers, trainable sets and
 * aux losses on it, so a recipe that does not fit a 14 GB model fails in about a second instead
 * of after the load.
 */
import { openCheckpoint } from '../io/index.js';
import { buildCausalLM, type BuildOptions } from '../models/build.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ModelConfig } from '../models/config.js';
import { checkpointSource, loadModelConfig, requireAllUsed } from '../models/load.js';
import type { WeightSource } from '../models/weight-source.js';
import { Tensor } from '../tensor/index.js';
import { quantizationConfigOf } from './load-quantized.js';
import { nf4TensorNames, QUANT_STATE_SUFFIX, readQuantState } from './quant-state-io.js';

export interface Skeleton {
  model: CausalLM;
  config: ModelConfig;
  /** The directory holds a saved 4-bit model. */
  quantized: boolean;
  /** Bytes of tensor data the real load would read. */
  checkpointBytes: number;
}

/** Views of one growing zero buffer (never written by the skeleton's own code). */
export function zeroViews(): (numel: number) => Float32Array {
  let buf = new Float32Array(0);
  return (numel) => {
    if (numel > buf.length) buf = new Float32Array(numel);
    return buf.subarray(0, numel);
  };
}

/** A WeightSource that hands out zero views for any name (new adapter weights in a skeleton). */
export function zeroWeightSource(zeros: (numel: number) => Float32Array = zeroViews()): WeightSource {
  return {
    has: () => true,
    get: (name, shape) => Tensor.param(zeros(shape.reduce((a, b) => a * b, 1)), shape, name),
  };
}

/** The skeleton of a model directory (float or saved 4-bit): headers checked, nothing read. */
export function buildSkeleton(dir: string, opts: BuildOptions = {}): Skeleton {
  const config = loadModelConfig(dir);
  const quantized = quantizationConfigOf(config.raw) !== null;
  const ckpt = openCheckpoint(dir);
  try {
    const zeros = zeroViews();
    const plain = checkpointSource(ckpt, dir, zeros);
    const src: WeightSource = !quantized ? plain : {
      has: (name) => ckpt.has(name),
      get(name, shape, kind) {
        if (name.endsWith('.weight') && ckpt.has(`${name}${QUANT_STATE_SUFFIX}`)) {
          const st = readQuantState(ckpt, name);
          if (st.shape.length !== shape.length || st.shape.some((d, i) => d !== shape[i])) {
            throw new Error(`${ckpt.info(name).file}: 4-bit tensor '${name}' has shape [${st.shape.join(', ')}], expected [${shape.join(', ')}]`);
          }
          for (const n of nf4TensorNames(name, st.nested_blocksize !== undefined)) plain.used.add(n);
          return Tensor.param(zeros(shape.reduce((a, b) => a * b, 1)), shape, name);
        }
        return plain.get(name, shape, kind);
      },
    };
    const model = buildCausalLM(config, src, opts);
    requireAllUsed(ckpt, plain.used, config, dir);
    return { model, config, quantized, checkpointBytes: ckpt.totalBytes };
  } finally {
    ckpt.close();
  }
}
