/**
 * What a model directory holds, from config.json and the safetensors headers only (no weights
 * are read): architecture, sizes, experts and routing layout, parameter counts total and active
 * per token, storage dtypes and bytes. Opening the checkpoint validates every shard's header, so
 * a bad file is the reader's one-line error naming it.
 */
import * as fs from 'node:fs';
import { openCheckpoint } from '../io/index.js';
import { loadModelConfig } from '../models/load.js';
import type { ModelConfig } from '../models/config.js';
import type { RouterSpec } from '../routers/router.js';
import { countParameters, type ParameterCounts } from './parameter-count.js';
import { formatRouterSpec } from './router-choice.js';

export interface ExpertInfo {
  /** True (FLOP-costing) experts per MoE layer. */
  numExperts: number;
  /** num_experts_per_tok (top-k of the config's router). */
  topK: number;
  /** AdaMoE null experts (m) and their top-k, or null. */
  nullExperts: { m: number; topK: number; mapping: string } | null;
  /** TC-MoE ternary router rows (2N + K) and zero experts K, or null. */
  ternary: { rows: number; zeroExperts: number } | null;
  /** Decoder layers with a MoE FFN. */
  moeLayers: number[];
  /** Router spec from the config (moe_tune.router), or the architecture default in words. */
  router: string;
  /** Expert hidden width. */
  expertIntermediateSize: number;
  gateScale: number;
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  modelType: string;
  layers: number;
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  tieWordEmbeddings: boolean;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  experts: ExpertInfo | null;
  parameters: ParameterCounts;
  /** Storage dtype -> tensor count. */
  dtypes: Record<string, number>;
  /** Tensor data bytes, and the weight files' sizes on disk. */
  checkpointBytes: number;
  fileBytes: number;
  files: string[];
  tensors: number;
  /** moe-tune extension keys present in config.json (null_experts, ternary, mo_lora, ...). */
  extensions: string[];
}

export function expertInfo(config: ModelConfig): ExpertInfo | null {
  if (!config.moe) return null;
  const ext = config.extensions;
  const N = config.moe.numExperts;
  const router = ext.router
    ? formatRouterSpec(ext.router as RouterSpec)
    : ext.null_experts ? `null-experts (top-${ext.null_experts.top_k} over ${N} + ${ext.null_experts.m})`
      : ext.ternary ? `ternary (top-${config.moe.topK} over ${2 * N + ext.ternary.zero_experts} rows)`
        : `top-k:k=${config.moe.topK}`;
  return {
    numExperts: N,
    topK: config.moe.topK,
    nullExperts: ext.null_experts ? { m: ext.null_experts.m, topK: ext.null_experts.top_k, mapping: ext.null_experts.mapping } : null,
    ternary: ext.ternary ? { rows: 2 * N + ext.ternary.zero_experts, zeroExperts: ext.ternary.zero_experts } : null,
    moeLayers: [...config.moe.layers],
    router,
    expertIntermediateSize: config.moe.expertIntermediateSize,
    gateScale: ext.gate_scale ?? 1,
  };
}

/** Inspects a model directory without reading its weights. */
export function inspectModel(dir: string): ModelInfo {
  const config = loadModelConfig(dir);
  const ckpt = openCheckpoint(dir);
  try {
    const names = ckpt.names();
    const dtypes: Record<string, number> = {};
    const entries: [string, number][] = [];
    for (const n of names) {
      const info = ckpt.info(n);
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
      entries.push([n, info.numel]);
    }
    let fileBytes = 0;
    for (const f of ckpt.files) fileBytes += fs.statSync(f).size;
    return {
      dir,
      architecture: config.architecture,
      modelType: config.modelType,
      layers: config.numLayers,
      hiddenSize: config.hiddenSize,
      intermediateSize: config.intermediateSize,
      vocabSize: config.vocabSize,
      heads: config.numHeads,
      kvHeads: config.numKvHeads,
      headDim: config.headDim,
      tieWordEmbeddings: config.tieWordEmbeddings,
      ropeTheta: config.ropeTheta,
      maxPositionEmbeddings: config.maxPositionEmbeddings,
      experts: expertInfo(config),
      parameters: countParameters(entries, config),
      dtypes,
      checkpointBytes: ckpt.totalBytes,
      fileBytes,
      files: [...ckpt.files],
      tensors: names.length,
      extensions: Object.keys(config.extensions),
    };
  } finally {
    ckpt.close();
  }
}
