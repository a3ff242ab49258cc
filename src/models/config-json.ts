import type { ModelConfig } from './config.js';

const TORCH_DTYPE: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16', F64: 'float64' };

/** The config.json object for a model config (original keys kept, ours updated). */
export function configToJson(c: ModelConfig, storageDtype = 'F32'): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c.raw };
  const modelType = c.modelType || c.architecture.replace(/ForCausalLM$/, '').toLowerCase();
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
    torch_dtype: TORCH_DTYPE[storageDtype] ?? 'float32',
  });
  if (c.headDim !== c.hiddenSize / c.numHeads) out['head_dim'] = c.headDim;
  if (c.padTokenId !== null) out['pad_token_id'] = c.padTokenId;
  if (c.moe) {
    Object.assign(out, {
      num_local_experts: c.moe.numExperts,
      num_experts_per_tok: c.moe.topK,
      router_aux_loss_coef: c.moe.routerAuxLossCoef,
    });
    if ('sliding_window' in c.raw || c.slidingWindow !== null) out['sliding_window'] = c.slidingWindow;
  }
  const ext: Record<string, unknown> = { ...c.extensions };
  if (c.moe && c.moe.expertIntermediateSize !== c.intermediateSize) ext['expert_intermediate_size'] = c.moe.expertIntermediateSize;
  if (Object.keys(ext).length > 0) out['moe_tune'] = ext;
  else delete out['moe_tune'];
  return out;
}
