/**
 * Turning a float model into a 4-bit one (QLoRA's "load_in_4bit"): every Linear whose module path
 * is a target and not skipped is replaced by an Nf4Linear. By default the router gates (`gate`,
 * `gate2`: small, and routing is sensitive to them), the LM head and the embeddings stay float;
 * norms are not linears and are never touched.
 *
 * Patterns: a string matches a module path that equals it or ends with "." + it
 * ("q_proj" matches "model.layers.0.self_attn.q_proj"); a RegExp is tested against the full path.
 */
import { layoutOf } from '../models/architectures/index.js';
import { FLOAT_KEPT } from '../models/architectures/llama.js';
import type { CausalLM } from '../models/causal-lm.js';
import { Linear } from '../models/linear.js';
import type { Module } from '../models/module.js';
import { Bf16Embedding } from './bf16-embedding.js';
import { Bf16Linear } from './bf16-linear.js';
import { Nf4Linear } from './nf4-linear.js';
import { NF4_BLOCK_SIZE, NESTED_BLOCK_SIZE } from './nf4.js';

export type ModulePattern = string | RegExp;

/**
 * Module names kept in float by default when no model is at hand (adapter layers — LoRA A/B, Mo-LoRA
 * routers and experts — always are); quantizeModel uses the model's family layout (`quantSkip`).
 */
export const DEFAULT_QUANT_SKIP: readonly ModulePattern[] = FLOAT_KEPT;

/** Adapter sub-layers: trainable, never quantised whatever the options say. */
const ADAPTER_PATH = /(^|\.)lora_[A-Za-z]+(\.|$)/;

export interface QuantizeModelOptions {
  /** Only these modules (default: every Linear). */
  targets?: readonly ModulePattern[] | null;
  /** Never these modules (default DEFAULT_QUANT_SKIP; pass [] to quantise the gates and head too). */
  skip?: readonly ModulePattern[];
  /** Double-quantise the block scales (default true). */
  doubleQuant?: boolean;
  /** Values per block (default 64). */
  blockSize?: number;
}

export interface QuantizeModelResult {
  /** Paths of the modules now 4-bit. */
  quantized: string[];
  /** Parameters now held in 4 bits. */
  quantizedParams: number;
  /** Bytes of their packed storage in memory (see nf4StorageBytes). */
  quantizedBytes: number;
  /** Float parameters left (norms, embeddings, gates, head, biases). */
  floatParams: number;
}

export function matchesPattern(path: string, p: ModulePattern): boolean {
  if (typeof p === 'string') return path === p || path.endsWith(`.${p}`);
  p.lastIndex = 0;
  return p.test(path);
}

/** Whether a linear module at `path` is quantised under these options. */
export function isQuantTarget(path: string, opts: Pick<QuantizeModelOptions, 'targets' | 'skip'> = {}): boolean {
  if (ADAPTER_PATH.test(path)) return false;
  const skip = opts.skip ?? DEFAULT_QUANT_SKIP;
  if (skip.some((p) => matchesPattern(path, p))) return false;
  const targets = opts.targets;
  if (targets && targets.length > 0) return targets.some((p) => matchesPattern(path, p));
  return true;
}

/** Replaces the targeted float Linear modules of `model` (also bases under LoRA wrappers) by Nf4Linear, in place. */
export function quantizeModel(model: CausalLM, opts: QuantizeModelOptions = {}): QuantizeModelResult {
  const o = { ...opts, skip: opts.skip ?? layoutOf(model.config).quantSkip };
  const chosen = layerSites(model, (m): m is Linear => m instanceof Linear).filter((s) => isQuantTarget(s.path, o));
  if (opts.targets && opts.targets.length > 0 && chosen.length === 0) {
    throw new Error(`quantizeModel: no linear module matches targets ${opts.targets.map(String).join(', ')}`);
  }
  const quant = { doubleQuant: opts.doubleQuant ?? true, blockSize: opts.blockSize ?? NF4_BLOCK_SIZE, nestedBlockSize: NESTED_BLOCK_SIZE };
  for (const site of chosen) site.replace(Nf4Linear.fromLinear(site.layer, { ...quant, name: site.path }));
  return { ...quantizedModelStats(model), quantized: chosen.map((s) => s.path) };
}

/** A layer of a model at a module path (adapter wrappers keep their base's path) and how to swap it. */
export interface LayerSite<L extends Module> {
  path: string;
  layer: L;
  replace(m: Module): void;
}

/**
 * Every layer satisfying `is`, found either as a module of the tree or as the `base` of an adapter
 * wrapper (LoraLinear / MoLoraLinear list their base's parameters under their own path and hold
 * the base in a `base` field).
 */
export function layerSites<L extends Module>(model: Module, is: (m: Module) => m is L): LayerSite<L>[] {
  const out: LayerSite<L>[] = [];
  for (const [path, m] of model.namedModules()) {
    if (is(m)) {
      out.push({ path, layer: m, replace: (n) => model.setModule(path, n) });
      continue;
    }
    let owner: Module = m;
    for (let depth = 0; depth < 4; depth++) {
      const base = (owner as unknown as { base?: unknown }).base;
      if (!(base instanceof Object) || typeof (base as Module).namedModules !== 'function') break;
      if (is(base as Module)) {
        const holder = owner as unknown as { base: Module };
        out.push({ path, layer: base as L, replace: (n) => { holder.base = n; } });
        break;
      }
      owner = base as Module;
    }
  }
  return out;
}

/** A 4-bit layer of a model (see layerSites). */
export type Nf4Site = LayerSite<Nf4Linear>;

/** Every Nf4Linear of a model, also those wrapped by adapters. */
export function nf4Sites(model: Module): Nf4Site[] {
  return layerSites(model, (m): m is Nf4Linear => m instanceof Nf4Linear);
}

/** Every frozen bf16 linear (Bf16Linear) of a model, also those wrapped by adapters. */
export function bf16Sites(model: Module): LayerSite<Bf16Linear>[] {
  return layerSites(model, (m): m is Bf16Linear => m instanceof Bf16Linear);
}

/** Every frozen bf16 token embedding (Bf16Embedding) of a model, with its module path. */
export function bf16Embeddings(model: Module): [string, Bf16Embedding][] {
  return model.namedModules().filter((e): e is [string, Bf16Embedding] => e[1] instanceof Bf16Embedding);
}

/** Counts of a (partly) quantised model. */
export function quantizedModelStats(model: Module): QuantizeModelResult {
  const quantized: string[] = [];
  let quantizedParams = 0;
  let quantizedBytes = 0;
  for (const site of nf4Sites(model)) {
    quantized.push(site.path);
    quantizedParams += site.layer.qweight.numel;
    quantizedBytes += site.layer.storageBytes;
  }
  const seen = new Set<unknown>();
  let floatParams = 0;
  for (const [, t] of model.namedParameters()) {
    if (seen.has(t)) continue;
    seen.add(t);
    floatParams += t.size;
  }
  for (const site of bf16Sites(model)) floatParams += site.layer.bits.length;
  for (const [, e] of bf16Embeddings(model)) floatParams += e.bits.length;
  return { quantized, quantizedParams, quantizedBytes, floatParams };
}

/**
 * Replaces every Nf4Linear (also under LoRA wrappers) by a float Linear holding its dequantised
 * weight, e.g. before merging adapters for a full-model export, and every Bf16Linear /
 * Bf16Embedding by its float Linear / Embedding. Returns the module paths.
 */
export function dequantizeModel(model: Module): string[] {
  const sites = nf4Sites(model);
  for (const site of sites) site.replace(site.layer.toLinear());
  const half = bf16Sites(model);
  for (const site of half) site.replace(site.layer.toLinear());
  const tables = bf16Embeddings(model);
  for (const [p, e] of tables) model.setModule(p, e.toEmbedding());
  return [...sites.map((s) => s.path), ...half.map((s) => s.path), ...tables.map(([p]) => p)];
}
