/**
 * Loading a model straight into 4 bits, and saving / reloading a 4-bit model.
 *
 * `loadModelQuantized(dir)` reads a float Hugging Face checkpoint (f32 / bf16 / f16, sharded or
 * not) tensor by tensor: each targeted linear weight is read into ONE scratch buffer (sized for the
 * largest tensor), quantised, and the float values are overwritten by the next tensor. Peak memory
 * is therefore the 4-bit weights + the float parameters that stay float (norms, embeddings, gates,
 * head; `bf16Frozen` layers as their stored bf16 bits) + one tensor. How: the model builder asks a WeightSource for every parameter; for a
 * quantised weight we hand it a placeholder that views the scratch buffer, and once the tree is
 * built every such Linear is swapped for an Nf4Linear (the placeholders are then unreachable).
 * A directory written by `saveQuantizedModel` (config.json has `quantization_config`) is loaded
 * the same way, reading the stored 4-bit tensors instead of quantising.
 *
 * `saveQuantizedModel(model, dir)` writes config.json (+ `quantization_config`, as transformers
 * records a bitsandbytes model) and safetensors with float parameters and, for each Nf4Linear, the
 * tensors described in quant-state-io.ts. Written atomically (temp dir + rename).
 */
import * as path from 'node:path';
import { layoutOf } from '../models/architectures/index.js';
import { openCheckpoint, withAtomicDir, writeCheckpoint, writeFileAtomic, type Checkpoint,
  type FloatStorageDtype, type TensorToWrite } from '../io/index.js';
import { buildCausalLM, type BuildOptions } from '../models/build.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ModelConfig } from '../models/config.js';
import { Embedding } from '../models/embedding.js';
import { Linear } from '../models/linear.js';
import { checkpointSource, loadModelConfig, requireAllUsed } from '../models/load.js';
import { modelDirFiles } from '../models/save.js';
import type { WeightSource } from '../models/weight-source.js';
import { Tensor } from '../tensor/index.js';
import { Bf16Embedding } from './bf16-embedding.js';
import { Bf16Linear } from './bf16-linear.js';
import { Nf4Linear } from './nf4-linear.js';
import { NESTED_BLOCK_SIZE, NF4_BLOCK_SIZE, quantizeNf4Js, quantizeNf4Stored, type Nf4Weight } from './nf4.js';
import { nf4Tensors, nf4TensorNames, QUANT_STATE_SUFFIX, readNf4Weight, readQuantState } from './quant-state-io.js';
import { bf16Embeddings, bf16Sites, isQuantTarget, layerSites, nf4Sites, quantizedModelStats, type QuantizeModelOptions, type QuantizeModelResult } from './quantize-model.js';

const TORCH_DTYPE: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16', F64: 'float64' };

export interface LoadQuantizedOptions extends QuantizeModelOptions, BuildOptions {
  /**
   * Linear modules not quantised and token embeddings that stay frozen in the checkpoint's bfloat16
   * (module paths, e.g. ['lm_head', 'model.embed_tokens']), as QLoRA keeps them in its 16-bit
   * compute dtype: each becomes a Bf16Linear / Bf16Embedding read straight from the stored bits (no
   * float32 copy; half the memory). Only bias-free layers and untied tables stored as BF16; others
   * load as float. Such a layer cannot train (its weight is not a parameter).
   */
  bf16Frozen?: readonly string[];
}

export interface LoadedQuantizedModel {
  model: CausalLM;
  config: ModelConfig;
  dir: string;
  /** 'float': quantised while loading; 'nf4': read from a saved 4-bit model. */
  source: 'float' | 'nf4';
  stats: QuantizeModelResult;
  /** Size of the one float scratch buffer the placeholders view (bytes; written only when the reference path ran). */
  scratchBytes: number;
}

/** The `quantization_config` of a config.json object when it describes a 4-bit bitsandbytes model. */
export function quantizationConfigOf(raw: Record<string, unknown>): Record<string, unknown> | null {
  const q = raw['quantization_config'];
  if (typeof q !== 'object' || q === null) return null;
  const r = q as Record<string, unknown>;
  return r['quant_method'] === 'bitsandbytes' && r['load_in_4bit'] === true ? r : null;
}

export function isQuantizedModelDir(dir: string): boolean {
  return quantizationConfigOf(loadModelConfig(dir).raw) !== null;
}

function isLinearWeight(name: string, kind: { type: string }): boolean {
  return name.endsWith('.weight') && (kind.type === 'linear' || kind.type === 'lm-head' || kind.type === 'router');
}

export function loadModelQuantized(dir: string, opts: LoadQuantizedOptions = {}): LoadedQuantizedModel {
  const config = loadModelConfig(dir);
  const prequantized = quantizationConfigOf(config.raw) !== null;
  const qopts = { ...opts, skip: opts.skip ?? layoutOf(config).quantSkip };
  const ckpt = openCheckpoint(dir);
  try {
    const where = ckpt.indexPath ?? path.join(dir, 'model.safetensors');
    const plain = checkpointSource(ckpt, dir);
    const used = plain.used;
    // the scratch buffer: as large as the largest tensor that may need a placeholder
    let maxNumel = 0;
    for (const n of ckpt.names()) {
      if (prequantized) {
        if (n.endsWith(QUANT_STATE_SUFFIX)) {
          const st = readQuantState(ckpt, n.slice(0, -QUANT_STATE_SUFFIX.length));
          maxNumel = Math.max(maxNumel, st.shape[0]! * st.shape[1]!);
        }
      } else maxNumel = Math.max(maxNumel, ckpt.info(n).numel);
    }
    // The placeholders view one buffer, only written by the reference path (an untouched buffer
    // occupies no memory: large allocations are zero pages until written).
    let scratchBuf: Float32Array | null = null;
    const scratch = (): Float32Array => (scratchBuf ??= new Float32Array(maxNumel));
    const quantized = new Map<string, Nf4Weight>();
    const half = new Map<string, { bits: Uint16Array; shape: readonly [number, number] }>();
    const quant = { doubleQuant: opts.doubleQuant ?? true, blockSize: opts.blockSize ?? NF4_BLOCK_SIZE, nestedBlockSize: NESTED_BLOCK_SIZE };

    const source: WeightSource = {
      has: (name) => ckpt.has(name),
      get(name, shape, kind) {
        const modulePath = name.slice(0, -'.weight'.length);
        const numel = shape.reduce((a, b) => a * b, 1);
        if (prequantized && name.endsWith('.weight') && ckpt.has(`${name}${QUANT_STATE_SUFFIX}`)) {
          const q = readNf4Weight(ckpt, name);
          if (q.shape.length !== shape.length || q.shape.some((d, i) => d !== shape[i])) {
            throw new Error(`${ckpt.info(name).file}: 4-bit tensor '${name}' has shape [${q.shape.join(', ')}], expected [${shape.join(', ')}]`);
          }
          for (const n of nf4TensorNames(name, q.nested !== null)) used.add(n);
          quantized.set(modulePath, q);
          return Tensor.param(scratch().subarray(0, numel), shape, name);
        }
        if (!prequantized && isLinearWeight(name, kind) && isQuantTarget(modulePath, qopts) && ckpt.has(name)) {
          const info = ckpt.info(name);
          if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
            throw new Error(`${info.file}: tensor '${name}' has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
          }
          const buf = scratch().subarray(0, numel);
          const dtype = TORCH_DTYPE[info.dtype] ?? 'float32';
          const qopts = { ...quant, sourceDtype: dtype, name };
          // native: straight from the file's bytes, no float copy; else (or to word an error) the reference
          const loc = ckpt.storedLocation(name);
          let q = loc ? quantizeNf4Stored(loc, shape, qopts) : null;
          if (!q) {
            ckpt.readFloat32Into(name, buf);
            q = quantizeNf4Js(buf, shape, qopts);
          }
          used.add(name);
          quantized.set(modulePath, q);
          return Tensor.param(buf, shape, name);
        }
        const table = kind.type === 'embedding' && !config.tieWordEmbeddings;
        if (!prequantized && opts.bf16Frozen?.includes(modulePath) && (isLinearWeight(name, kind) || table) && shape.length === 2
          && ckpt.has(name) && ckpt.dtypeOf(name) === 'BF16' && !ckpt.has(`${modulePath}.bias`)) {
          const raw = ckpt.readRaw(name);
          if (raw.byteLength !== numel * 2) throw new Error(`${ckpt.info(name).file}: tensor '${name}' has ${raw.byteLength} bytes, expected ${numel * 2} for [${shape.join(', ')}] BF16`);
          half.set(modulePath, { bits: new Uint16Array(raw.buffer, raw.byteOffset, numel), shape: [shape[0]!, shape[1]!] });
          used.add(name);
          return Tensor.param(scratch().subarray(0, numel), shape, name);
        }
        return plain.get(name, shape, kind);
      },
    };
    const model = buildCausalLM(config, source, opts);
    if (!prequantized && opts.targets && opts.targets.length > 0 && quantized.size === 0) {
      throw new Error(`${where}: no linear module matches the quantisation targets ${opts.targets.map(String).join(', ')}`);
    }
    const sites = new Map(layerSites(model, (m): m is Linear => m instanceof Linear).map((s) => [s.path, s]));
    for (const [modulePath, q] of quantized) {
      const site = sites.get(modulePath);
      if (!site) throw new Error(`${where}: '${modulePath}' holds a 4-bit weight but is not a linear layer`);
      site.replace(new Nf4Linear(q, site.layer.bias, modulePath));
    }
    for (const [modulePath, h] of half) {
      if (model.getModule(modulePath) instanceof Embedding) {
        model.setModule(modulePath, new Bf16Embedding(h.bits, h.shape, modulePath));
        continue;
      }
      const site = sites.get(modulePath);
      if (!site) throw new Error(`${where}: '${modulePath}' was asked to stay bf16 but is not a linear layer or token embedding`);
      site.replace(new Bf16Linear(h.bits, h.shape, modulePath));
    }
    requireAllUsed(ckpt, used, config, dir);
    return { model, config, dir, source: prequantized ? 'nf4' : 'float', stats: quantizedModelStats(model), scratchBytes: (scratchBuf as Float32Array | null)?.byteLength ?? 0 };
  } finally {
    ckpt.close();
  }
}

export interface SaveQuantizedOptions {
  /** On-disk dtype of the float parameters (default F32). */
  dtype?: FloatStorageDtype;
  maxShardBytes?: number;
  /** Replace an existing non-empty directory. */
  force?: boolean;
  /** Extra files (name -> content), e.g. tokenizer.json. */
  extraFiles?: Record<string, string>;
}

/** The quantization_config block written to config.json (transformers' BitsAndBytesConfig keys). */
export function quantizationConfigJson(model: CausalLM): Record<string, unknown> {
  let doubleQuant = true;
  for (const site of nf4Sites(model)) doubleQuant = site.layer.qweight.nested !== null;
  const floatLinears = new Set<string>();
  for (const [p, m] of model.namedModules()) {
    if (m instanceof Linear) floatLinears.add(p.slice(p.lastIndexOf('.') + 1));
  }
  if (model.config.tieWordEmbeddings || model.lm_head) floatLinears.add('lm_head');
  return {
    quant_method: 'bitsandbytes',
    load_in_4bit: true,
    load_in_8bit: false,
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: doubleQuant,
    bnb_4bit_compute_dtype: 'float32',
    bnb_4bit_quant_storage: 'uint8',
    llm_int8_skip_modules: [...new Set([...layoutOf(model.config).quantSkip.filter((p): p is string => typeof p === 'string'), ...floatLinears])].sort(),
  };
}

/**
 * Every tensor of a (partly) 4-bit model, float parameters first in module order, then frozen bf16 linears (adapter tensors
 * included when the model carries LoRA: save adapters separately if the base should stay clean).
 */
export function quantizedStateTensors(model: CausalLM, dtype: FloatStorageDtype = 'F32'): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  const seen = new Set<unknown>();
  for (const [name, t] of model.namedParameters()) {
    if (seen.has(t)) continue;
    seen.add(t);
    out.push({ name, dtype, shape: t.shape, data: t.f as Float32Array });
  }
  // frozen bf16 tables and linears: their bits as they are, or widened (exactly) for a float32 / f16 save
  const half: [string, Bf16Embedding | Bf16Linear][] = [...bf16Embeddings(model), ...bf16Sites(model).map((x): [string, Bf16Linear] => [x.path, x.layer])];
  for (const [p, l] of half) {
    out.push(dtype === 'BF16'
      ? { name: `${p}.weight`, dtype, shape: l.shape, data: l.bits }
      : { name: `${p}.weight`, dtype, shape: l.shape, data: () => l.floatWeight() });
  }
  for (const site of nf4Sites(model)) out.push(...nf4Tensors(site.path, site.layer.qweight));
  return out;
}

export async function saveQuantizedModel(model: CausalLM, dir: string, opts: SaveQuantizedOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  await withAtomicDir(dir, async (tmp) => {
    const files = modelDirFiles(model, dtype, (cfg) => {
      cfg['quantization_config'] = quantizationConfigJson(model);
    });
    for (const [name, content] of Object.entries({ ...opts.extraFiles, ...files })) writeFileAtomic(path.join(tmp, name), content);
    await writeCheckpoint(tmp, quantizedStateTensors(model, dtype), { maxShardBytes: opts.maxShardBytes });
  }, { force: opts.force });
}

/** Total bytes of tensor data a saved model directory holds, split into 4-bit and float parts. */
export function checkpointByteBreakdown(ckpt: Checkpoint): { quantBytes: number; floatBytes: number; quantParams: number } {
  let quantBytes = 0;
  let floatBytes = 0;
  let quantParams = 0;
  const quantNames = new Set<string>();
  for (const n of ckpt.names()) {
    if (!n.endsWith(QUANT_STATE_SUFFIX)) continue;
    const w = n.slice(0, -QUANT_STATE_SUFFIX.length);
    const st = readQuantState(ckpt, w);
    quantParams += st.shape[0]! * st.shape[1]!;
    for (const x of nf4TensorNames(w, st.nested_blocksize !== undefined)) quantNames.add(x);
  }
  for (const n of ckpt.names()) {
    if (quantNames.has(n)) quantBytes += ckpt.info(n).byteLength;
    else floatBytes += ckpt.info(n).byteLength;
  }
  return { quantBytes, floatBytes, quantParams };
}
