/**
 * Readers for the config keys families share: each family file picks the ones its transformers
 * configuration has, so a family states its keys and defaults in one place and the checks and
 * error lines are written once.
 */
import { z } from 'zod';
import type { RouterSpec } from '../../routers/router.js';
import { formatIssues, type AttentionConfig } from '../config.js';

/** Parses `c` (config.json merged with defaults) with a zod shape; one error line per bad field. */
export function readKeys<S extends z.ZodRawShape>(c: Record<string, unknown>, shape: S, where: string): z.infer<z.ZodObject<S>> {
  const r = z.object(shape).loose().safeParse(c);
  if (!r.success) throw new Error(formatIssues(where, r.error));
  return r.data as z.infer<z.ZodObject<S>>;
}

export const positiveInt = z.number().int().positive();

/** Throws `where: unsupported config: ...` when any reason is given. */
export function refuse(where: string, reasons: (string | false | null | undefined)[]): void {
  const bad = reasons.filter((r): r is string => typeof r === 'string');
  if (bad.length > 0) throw new Error(`${where}: unsupported config: ${bad.join('; ')}`);
}

/** Plain grouped-query attention with optional biases (no q/k norm, no clipping). */
export function plainAttention(qkvBias = false, oBias = false): AttentionConfig {
  return { qkvBias, oBias, qkNorm: 'none', clipQkv: null };
}

/** A family's softmax top-k routing rule: renormalised over the k kept experts or not (norm_topk_prob). */
export function softmaxTopK(k: number, renormalize: boolean): RouterSpec {
  return renormalize ? { name: 'top-k', k } : { name: 'top-k', k, renormalize: false };
}

/**
 * The MoE layers of a Qwen-style config: layer i is sparse when it is not in mlp_only_layers and
 * (i + 1) % decoder_sparse_step == 0 (transformers' Qwen2MoeDecoderLayer).
 */
export function sparseStepLayers(numLayers: number, step: number, mlpOnly: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < numLayers; i++) if (!mlpOnly.includes(i) && (i + 1) % step === 0) out.push(i);
  return out;
}

/**
 * Qwen's sliding window: only with use_sliding_window, on the layers from max_window_layers on
 * (or as layer_types says). moe-tune refuses sequences longer than the window rather than masking.
 */
export function qwenSlidingWindow(c: Record<string, unknown>, where: string): number | null {
  const k = readKeys(c, {
    use_sliding_window: z.boolean().optional(),
    sliding_window: z.number().int().nonnegative().nullish(),
    layer_types: z.array(z.string()).nullish(),
  }, where);
  const sliding = k.layer_types ? k.layer_types.includes('sliding_attention') : k.use_sliding_window === true;
  if (!sliding || !k.use_sliding_window) return null;
  return k.sliding_window ? k.sliding_window : null;
}
