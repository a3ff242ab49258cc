/**
 * Loads a Hugging Face model directory (config.json + safetensors, sharded or not, bf16 / f16 /
 * f32 upcast to f32). Tensors are read one at a time straight into their float32 parameter, so
 * loading holds the model's float32 bytes plus at most one tensor's raw bytes.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { MoeTokenizer } from '../data/tokenizer.js';
import { openCheckpoint, readHfConfig, type Checkpoint } from '../io/index.js';
import { Tensor, shapeStr } from '../tensor/index.js';
import { buildCausalLM, type BuildOptions } from './build.js';
import type { CausalLM } from './causal-lm.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { layoutOf, resolveArchitecture } from './registry.js';
import { fromRemoteCodeConfig } from './remote-code.js';
import type { WeightSource } from './weight-source.js';

/** Buffers some checkpoints carry that are not parameters (recomputed by us). */
const IGNORED_KEYS = [/\.rotary_emb\.inv_freq$/];

export interface LoadedModel {
  model: CausalLM;
  config: ModelConfig;
  dir: string;
  /** Storage dtypes found in the checkpoint, with tensor counts. */
  dtypes: Record<string, number>;
  /** Bytes of tensor data on disk. */
  checkpointBytes: number;
  /** The directory's tokenizer (tokenizer.json + tokenizer_config.json), null when it has none. */
  tokenizer: MoeTokenizer | null;
}

/** A model directory's tokenizer, or null without tokenizer.json; checked against the embedding size. */
export function loadDirTokenizer(dir: string, config: ModelConfig): MoeTokenizer | null {
  if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) return null;
  const tok = MoeTokenizer.fromDir(dir);
  checkTokenizerFits(tok, config, dir);
  return tok;
}

/**
 * A tokenizer whose ids reach past the embedding would only fail at the first such id, deep in a
 * run: refuse it at load, naming both sizes.
 */
export function checkTokenizerFits(tok: MoeTokenizer, config: ModelConfig, dir: string): void {
  if (tok.vocabSize > config.vocabSize) {
    throw new Error(`${path.join(dir, 'tokenizer.json')}: the tokenizer has ${tok.vocabSize} ids, more than the model's vocab_size ${config.vocabSize} in config.json (the embedding has ${config.vocabSize} rows)`);
  }
}

/** Reads and validates config.json of a model directory. */
export function loadModelConfig(dir: string): ModelConfig {
  const raw = fromRemoteCodeConfig(readHfConfig(dir));
  const where = path.join(dir, 'config.json');
  const arch = resolveArchitecture(raw, where);
  return parseModelConfig(raw, arch, where);
}

/**
 * A WeightSource reading from a checkpoint, checking names and shapes. `placeholder`, when given,
 * supplies the parameter data instead of reading it (a skeleton: names and shapes checked against
 * the headers, no weight read).
 */
export function checkpointSource(ckpt: Checkpoint, dir: string, placeholder?: (numel: number) => Float32Array): WeightSource & { used: Set<string> } {
  const used = new Set<string>();
  const where = ckpt.indexPath ?? path.join(dir, 'model.safetensors');
  return {
    used,
    has: (name) => ckpt.has(name),
    get(name, shape) {
      if (!ckpt.has(name)) throw new Error(`${where}: missing tensor '${name}' (expected shape ${shapeStr(shape)})`);
      const info = ckpt.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${info.file}: tensor '${name}' has shape ${shapeStr(info.shape)}, expected ${shapeStr(shape)}`);
      }
      const numel = shape.reduce((a, b) => a * b, 1);
      const data = placeholder ? placeholder(numel) : new Float32Array(numel);
      if (!placeholder) ckpt.readFloat32Into(name, data);
      used.add(name);
      return Tensor.param(data, shape, name);
    },
  };
}

/** Throws one line when the checkpoint holds tensors the built model did not ask for. */
export function requireAllUsed(ckpt: Checkpoint, used: ReadonlySet<string>, config: ModelConfig, dir: string): void {
  const ignored = [...IGNORED_KEYS, ...(layoutOf(config).unreadKeys?.(config) ?? [])];
  const unused = ckpt.names().filter((n) => !used.has(n) && !ignored.some((r) => r.test(n)));
  if (unused.length > 0) {
    const where = ckpt.indexPath ?? path.join(dir, 'model.safetensors');
    throw new Error(`${where}: ${unused.length} tensor(s) not used by ${config.architecture}: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`);
  }
}

export function loadModel(dir: string, opts: BuildOptions = {}): LoadedModel {
  const config = loadModelConfig(dir);
  const ckpt = openCheckpoint(dir);
  try {
    const src = checkpointSource(ckpt, dir);
    const model = buildCausalLM(config, src, opts);
    requireAllUsed(ckpt, src.used, config, dir);
    const dtypes: Record<string, number> = {};
    for (const n of ckpt.names()) dtypes[ckpt.dtypeOf(n)] = (dtypes[ckpt.dtypeOf(n)] ?? 0) + 1;
    return { model, config, dir, dtypes, checkpointBytes: ckpt.totalBytes, tokenizer: loadDirTokenizer(dir, config) };
  } finally {
    ckpt.close();
  }
}
