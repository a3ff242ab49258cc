import { layoutOf } from './architectures/index.js';
import type { ModelConfig } from './config.js';
import { ropeToJson } from './rotary.js';

const TORCH_DTYPE: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16', F64: 'float64' };

/**
 * Keys of an input config.json that no longer apply to what moe-tune writes: the old dtype name, remote code of
 * another tool (ours is added back by toRemoteCodeConfig), a quantisation of the input (a 4-bit save adds its
 * own), the path transformers records when loading.
 */
const STALE_KEYS = ['torch_dtype', 'auto_map', 'quantization_config', '_name_or_path'];

/** The config.json object for a model config (original keys kept, ours updated). */
export function configToJson(c: ModelConfig, storageDtype = 'F32'): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c.raw };
  const modelType = c.modelType || layoutOf(c).modelType;
  Object.assign(out, {
    architectures: [c.architecture],
    model_type: modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: 'silu',
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    // transformers (4.56+ and 5) writes `dtype`; a `torch_dtype` read from an older file would be stale
    dtype: TORCH_DTYPE[storageDtype] ?? 'float32',
  });
  // keys that describe a different file than the one being written
  for (const k of STALE_KEYS) delete out[k];
  if (c.headDim !== c.hiddenSize / c.numHeads) out['head_dim'] = c.headDim;
  if (c.rope.type !== 'default') {
    // the input's own rope keys stay (DeepSeek / Kimi yarn: mscale / mscale_all_dim also set the MLA softmax scale)
    const given = { ...(c.raw['rope_scaling'] as Record<string, unknown> | null | undefined ?? {}), ...(c.raw['rope_parameters'] as Record<string, unknown> | null | undefined ?? {}) };
    delete given['type'];
    delete out['rope_scaling'];
    out['rope_parameters'] = { ...given, ...ropeToJson(c.rope) };
  } else if (out['rope_parameters'] && typeof out['rope_parameters'] === 'object') {
    out['rope_parameters'] = { ...(out['rope_parameters'] as Record<string, unknown>), rope_theta: c.ropeTheta };
  }
  if (c.padTokenId !== null) out['pad_token_id'] = c.padTokenId;
  if (c.moe) {
    Object.assign(out, {
      [layoutOf(c).expertsKey ?? 'num_local_experts']: c.moe.numExperts,
      num_experts_per_tok: c.moe.topK,
      router_aux_loss_coef: c.moe.routerAuxLossCoef,
    });
    if ('sliding_window' in c.raw || c.slidingWindow !== null) out['sliding_window'] = c.slidingWindow;
  }
  const ext: Record<string, unknown> = { ...c.extensions };
  if (Object.keys(ext).length > 0) out['moe_tune'] = ext;
  else delete out['moe_tune'];
  return out;
}
