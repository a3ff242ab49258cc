/**
 * Saves a model in Hugging Face layout: config.json (the original keys, updated with the current
 * architecture's fields and moe-tune's extension keys) and safetensors shards, atomically.
 */
import * as path from 'node:path';
import { pythonConfigJsonDumps, withAtomicDir, writeCheckpoint, writeFileAtomic, type FloatStorageDtype } from '../io/index.js';
import type { MoeTokenizer } from '../data/tokenizer.js';
import type { CausalLM } from './causal-lm.js';
import { configToJson } from './config-json.js';
import { remoteCodeFiles, remoteCodeReason, toRemoteCodeConfig } from './remote-code.js';

export interface SaveOptions {
  /** On-disk dtype of float tensors (default F32). */
  dtype?: FloatStorageDtype;
  maxShardBytes?: number;
  /** Replace an existing non-empty directory. */
  force?: boolean;
  /** Extra files to write into the directory (name -> content). */
  extraFiles?: Record<string, string>;
  /**
   * A tokenizer to save with the model (tokenizer.json, tokenizer_config.json with its chat template,
   * special_tokens_map.json), so the directory is complete for generate / eval / transformers.
   */
  tokenizer?: MoeTokenizer | null;
  /**
   * Write moe-tune's remote code even when transformers has the architecture (export-job: the job's training loop
   * reads the routing records and PEFT targets the per-expert linears of our modeling file).
   */
  alwaysRemoteCode?: boolean;
}

/** Every parameter of the model by its Hugging Face key (tied weights appear once). */
export function stateDict(model: CausalLM): [string, Float32Array, readonly number[]][] {
  const seen = new Set<unknown>();
  const out: [string, Float32Array, readonly number[]][] = [];
  for (const [name, t] of model.namedParameters()) {
    if (seen.has(t)) continue;
    seen.add(t);
    out.push([name, t.f as Float32Array, t.shape]);
  }
  return out;
}

/**
 * config.json as transformers writes it (floats kept floats, `dtype` of the tensors), and for an architecture
 * transformers does not have, the remote code (see remote-code.ts) it needs to load.
 */
export function modelDirFiles(model: CausalLM, storageDtype: string, extra: (cfg: Record<string, unknown>) => void = () => {},
  alwaysRemoteCode = false): Record<string, string> {
  let cfg = configToJson(model.config, storageDtype);
  const remote = alwaysRemoteCode || remoteCodeReason(model.config) !== null;
  if (remote) cfg = toRemoteCodeConfig(cfg, model);
  extra(cfg);
  return { 'config.json': pythonConfigJsonDumps(cfg), ...(remote ? remoteCodeFiles() : {}) };
}

export async function saveModel(model: CausalLM, dir: string, opts: SaveOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const packed = model.namedModules().find(([, m]) => m.holdsNonParameterState());
  if (packed) {
    throw new Error(`saveModel ${dir}: module '${packed[0]}' holds 4-bit weights that a plain checkpoint cannot store (use saveQuantizedModel, or dequantizeModel first)`);
  }
  await withAtomicDir(dir, async (tmp) => {
    for (const [name, content] of Object.entries({ ...opts.extraFiles, ...modelDirFiles(model, dtype, undefined, opts.alwaysRemoteCode) })) {
      writeFileAtomic(path.join(tmp, name), content);
    }
    opts.tokenizer?.save(tmp);
    await writeCheckpoint(tmp, stateDict(model).map(([name, data, shape]) => ({ name, dtype, shape, data })),
      { maxShardBytes: opts.maxShardBytes });
  }, { force: opts.force });
}

