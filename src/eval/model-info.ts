/**
 * What a model directory holds, from config.json and the safetensors headers only (no weights
 * are read): architecture, sizes, experts and routing layout, parameter counts total and active
 * per token, storage dtypes and bytes. Opening the checkpoint validates every shard's header, so
 * a bad file is the reader's one-line error naming it. The module tree is built as a skeleton from
 * the headers (quant/skeleton.ts: shapes checked, nothing read), so config values the tensors
 * contradict (vocab_size, num_local_experts, sizes) are the loader's one-line error, not a report;
 * a tokenizer.json with more ids than the embedding is an error too.
 *
 * Parameters are logical: a 4-bit (NF4) weight counts its [out, in] elements from its quant state,
 * as its float base would, and the packed bytes (codes, absmax, quant maps) are reported apart.
 */
import * as fs from 'node:fs';
import { openCheckpoint } from '../io/index.js';
import { loadDirTokenizer, loadModelConfig } from '../models/load.js';
import { buildSkeleton } from '../quant/skeleton.js';
import { QUANT_STATE_SUFFIX, readQuantState } from '../quant/quant-state-io.js';
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
  /** The shared expert every token runs (its width, whether a sigmoid gate scales it), or null. */
  sharedExpert: { intermediateSize: number; gated: boolean; count?: number } | null;
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
  /** 4-bit (NF4) weights: how many, their logical parameters, and the bytes their packed tensors take; null for a float model. */
  packed: { weights: number; parameters: number; bytes: number } | null;
  /** Fine-grained FP8 (config quant_method "fp8"): the [rows, columns] block of the float8 weights' scales, read dequantised; else null. */
  fp8Block: readonly [number, number] | null;
}

export function expertInfo(config: ModelConfig): ExpertInfo | null {
  if (!config.moe) return null;
  const ext = config.extensions;
  const N = config.moe.numExperts;
  const router = ext.router
    ? formatRouterSpec(ext.router as RouterSpec)
    : ext.null_experts ? `null-experts (top-${ext.null_experts.top_k} over ${N} + ${ext.null_experts.m})`
      : ext.ternary ? `ternary (top-${config.moe.topK} over ${2 * N + ext.ternary.zero_experts} rows)`
        : formatRouterSpec(config.moe.router);
  return {
    numExperts: N,
    topK: config.moe.topK,
    nullExperts: ext.null_experts ? { m: ext.null_experts.m, topK: ext.null_experts.top_k, mapping: ext.null_experts.mapping } : null,
    ternary: ext.ternary ? { rows: 2 * N + ext.ternary.zero_experts, zeroExperts: ext.ternary.zero_experts } : null,
    moeLayers: [...config.moe.layers],
    router,
    expertIntermediateSize: config.moe.expertIntermediateSize,
    gateScale: config.moe.routedScale,
    sharedExpert: config.moe.sharedExpert ? { ...config.moe.sharedExpert } : null,
  };
}

/** Inspects a model directory without reading its weights. */
export function inspectModel(dir: string): ModelInfo {
  const config = loadModelConfig(dir);
  buildSkeleton(dir); // every tensor's name and shape against the config, nothing read
  loadDirTokenizer(dir, config); // a tokenizer larger than the embedding
  const ckpt = openCheckpoint(dir);
  try {
    const names = ckpt.names();
    const dtypes: Record<string, number> = {};
    const entries: [string, number][] = [];
    const nf4 = new Set(names.filter((n) => ckpt.has(`${n}${QUANT_STATE_SUFFIX}`)));
    const nf4Aux = (n: string): string | null => {
      for (const sfx of [QUANT_STATE_SUFFIX, '.quant_map', '.absmax', '.nested_absmax', '.nested_quant_map']) {
        if (n.endsWith(sfx) && nf4.has(n.slice(0, -sfx.length))) return n.slice(0, -sfx.length);
      }
      return null;
    };
    const packed: ModelInfo['packed'] = nf4.size > 0 ? { weights: 0, parameters: 0, bytes: 0 } : null;
    for (const n of names) {
      const info = ckpt.info(n);
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
      if (nf4.has(n)) {
        const logical = readQuantState(ckpt, n).shape.reduce((a, b) => a * b, 1);
        packed!.weights++;
        packed!.parameters += logical;
        packed!.bytes += info.byteLength;
        entries.push([n, logical]);
      } else if (nf4Aux(n) !== null) {
        packed!.bytes += info.byteLength;
      } else entries.push([n, info.numel]);
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
      packed,
      fp8Block: ckpt.fp8Block,
    };
  } finally {
    ckpt.close();
  }
}
