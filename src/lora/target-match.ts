/**
 * Which linears an adapter targets, with PEFT's `target_modules` rules so our adapters and PEFT's
 * agree on the same model:
 * - a list of names: a module matches when its full path equals a name or ends with `.name`
 *   (`q_proj` matches `model.layers.0.self_attn.q_proj`);
 * - a string: a regular expression that must match the whole path;
 * - `all-linear`: every linear except the output layer (`lm_head`).
 * `exclude` takes the same forms; `layers` keeps only modules under `<...>.<i>.` with i in the list
 * (PEFT's layers_to_transform: the first numbered path segment is the layer index).
 */
import type { CausalLM } from '../models/causal-lm.js';
import { isLinearLike, type LinearLike } from '../models/linear.js';
import type { Module } from '../models/module.js';

export const ALL_LINEAR = 'all-linear';

/** A list of names (exact or `.suffix`), or one regular expression (full match), or 'all-linear'. */
export type TargetPatterns = readonly string[] | string;

export interface TargetSelection {
  targets: TargetPatterns;
  exclude?: TargetPatterns | null;
  /** Layer indices to keep (PEFT's layers_to_transform). */
  layers?: readonly number[] | null;
  /** PEFT's layers_pattern: the name before the layer index (default: any). */
  layersPattern?: string | null;
}

/**
 * Parses a command-line target list: `q_proj|v_proj` (names), `all-linear`, or `re:<regex>`
 * (a regular expression over the full module path).
 */
export function parseTargets(text: string, where = 'targets'): TargetPatterns {
  const t = text.trim();
  if (t === '') throw new Error(`${where}: empty target list (expected names like q_proj|v_proj, all-linear, or re:<regex>)`);
  if (t === ALL_LINEAR) return ALL_LINEAR;
  if (t.startsWith('re:')) {
    const re = t.slice(3);
    compileFull(re, where);
    return re;
  }
  const names = t.split('|').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new Error(`${where}: empty name in '${text}' (expected names separated by |)`);
  return names;
}

/** A human-readable form of target patterns (for reports and errors). */
export function targetsText(t: TargetPatterns): string {
  return typeof t === 'string' ? (t === ALL_LINEAR ? t : `re:${t}`) : t.join('|');
}

function compileFull(re: string, where: string): RegExp {
  try {
    return new RegExp(`^(?:${re})$`);
  } catch (err) {
    throw new Error(`${where}: invalid regular expression '${re}': ${(err as Error).message}`);
  }
}

function matchesPatterns(path: string, p: TargetPatterns, where: string): boolean {
  if (typeof p === 'string') {
    if (p === ALL_LINEAR) return !isOutputLayer(path);
    return compileFull(p, where).test(path);
  }
  return p.some((name) => path === name || path.endsWith(`.${name}`));
}

function isOutputLayer(path: string): boolean {
  return path === 'lm_head';
}

/** The layer index of a module path as PEFT reads it (first `.<name>.<digits>.` group), or null. */
export function layerIndexOf(path: string, layersPattern?: string | null): number | null {
  const m = layersPattern
    ? new RegExp(`^.*?\\.${escapeRe(layersPattern)}\\.(\\d+)\\.`).exec(path)
    : /^.*?\.[^.]*\.(\d+)\./.exec(path);
  return m ? Number(m[1]) : null;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a module path is selected. */
export function pathSelected(path: string, sel: TargetSelection, where = 'targets'): boolean {
  if (sel.exclude && matchesPatterns(path, sel.exclude, where)) return false;
  if (!matchesPatterns(path, sel.targets, where)) return false;
  if (sel.layers && sel.layers.length > 0) {
    const i = layerIndexOf(path, sel.layersPattern);
    if (i === null || !sel.layers.includes(i)) return false;
  }
  return true;
}

/** Modules that hold adapter weights of their own (their inner linears are never targets). */
export interface AdapterWrapper extends LinearLike {
  adapterParameters(): import('../tensor/index.js').Tensor[];
}

export function isAdapterWrapper(m: Module): m is AdapterWrapper {
  return isLinearLike(m) && typeof (m as Partial<AdapterWrapper>).adapterParameters === 'function';
}

/**
 * Every linear-like module of the model in module order ([path, module]), not counting the linears
 * inside adapter wrappers (LoRA's A/B, Mo-LoRA's router and experts).
 */
export function candidateLinears(model: CausalLM): [string, LinearLike][] {
  const out: [string, LinearLike][] = [];
  const inside: string[] = [];
  for (const [path, m] of model.namedModules()) {
    if (path === '') continue;
    if (inside.some((p) => path.startsWith(`${p}.`))) continue;
    if (!isLinearLike(m)) continue;
    out.push([path, m]);
    if (isAdapterWrapper(m)) inside.push(path);
  }
  return out;
}

/** The linears selected by `sel`, in module order. */
export function selectLinears(model: CausalLM, sel: TargetSelection, where = 'targets'): [string, LinearLike][] {
  return candidateLinears(model).filter(([path]) => pathSelected(path, sel, where));
}

/** A one-line error for targets that select nothing, listing the linear names the model has. */
export function noMatchError(model: CausalLM, sel: TargetSelection, where: string): Error {
  const names = [...new Set(candidateLinears(model).map(([p]) => p.slice(p.lastIndexOf('.') + 1)))];
  return new Error(`${where}: targets '${targetsText(sel.targets)}' match no linear of ${model.config.architecture} (its linears are named ${names.join(', ')})`);
}
