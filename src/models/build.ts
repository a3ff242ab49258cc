/**
 * Builds a CausalLM for a normalised config from a WeightSource. One builder serves Llama (dense),
 * Mixtral (MoE in every layer) and moe-tune's extended layouts (null-expert gate2, ternary router
 * rows with a bias, MoE in some layers, decomposed experts with a gate scale).
 */
import { createDefaultRouter } from './default-router.js';
import type { Router } from '../routers/router.js';
import { LlamaAttention } from './attention.js';
import { CausalLM, DecoderStack } from './causal-lm.js';
import type { ModelConfig } from './config.js';
import { DecoderLayer } from './decoder-layer.js';
import { Embedding } from './embedding.js';
import { Linear } from './linear.js';
import { LlamaMLP, MixtralExpert } from './mlp.js';
import { SparseMoeBlock } from './moe-block.js';
import { RMSNorm } from './rms-norm.js';
import type { WeightSource } from './weight-source.js';

/**
 * Layers defined above the models layer (LoRA and Mo-LoRA, in src/lora) that a config asks for
 * with a moe_tune key. They register a builder here when their module is imported; buildCausalLM
 * runs it on the finished model, reading their tensors from the same WeightSource (so loadModel
 * checks their names and shapes, and counts them as used).
 */
export interface LayerExtension {
  /** The moe_tune key that asks for these layers. */
  key: string;
  build(model: CausalLM, config: ModelConfig, src: WeightSource): void;
}

/** moe_tune keys whose layers come from a registered LayerExtension, in the order they are built. */
export const LAYER_EXTENSION_KEYS = ['mo_lora', 'lora'] as const;

const layerExtensions = new Map<string, LayerExtension>();

export function registerLayerExtension(ext: LayerExtension): void {
  layerExtensions.set(ext.key, ext);
}

export interface BuildOptions {
  /** A router to use in every MoE layer instead of the config's own. */
  router?: Router;
}

/** Router rows of one layer's `gate` (and whether it has a bias) for this config. */
export function gateRows(config: ModelConfig): { rows: number; bias: boolean; gate2Rows: number } {
  const N = config.moe!.numExperts;
  const ext = config.extensions;
  if (ext.ternary) return { rows: 2 * N + ext.ternary.zero_experts, bias: true, gate2Rows: 0 };
  return { rows: N, bias: false, gate2Rows: ext.null_experts?.m ?? 0 };
}

export function buildCausalLM(config: ModelConfig, src: WeightSource, opts: BuildOptions = {}): CausalLM {
  const D = config.hiddenSize;
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh } = config;
  const lin = (name: string, out: number, inF: number): Linear =>
    new Linear(src.get(`${name}.weight`, [out, inF], { type: 'linear', fanIn: inF }));
  const norm = (name: string): RMSNorm => new RMSNorm(src.get(`${name}.weight`, [D], { type: 'norm' }), config.rmsNormEps);
  const moeLayers = new Set(config.moe?.layers ?? []);
  const router = config.moe ? (opts.router ?? createDefaultRouter(config)) : null;

  const layers: DecoderLayer[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    const attn = new LlamaAttention(config,
      lin(`${p}.self_attn.q_proj`, H * Dh, D), lin(`${p}.self_attn.k_proj`, Hkv * Dh, D),
      lin(`${p}.self_attn.v_proj`, Hkv * Dh, D), lin(`${p}.self_attn.o_proj`, D, H * Dh));
    let ffn: LlamaMLP | SparseMoeBlock;
    if (moeLayers.has(i)) {
      const moe = config.moe!;
      const F = moe.expertIntermediateSize;
      const m = `${p}.block_sparse_moe`;
      const g = gateRows(config);
      const gate = new Linear(
        src.get(`${m}.gate.weight`, [g.rows, D], { type: 'router' }),
        g.bias ? src.get(`${m}.gate.bias`, [g.rows], { type: 'router-bias', rows: [] }) : null);
      const experts = Array.from({ length: moe.numExperts }, (_, e) => new MixtralExpert(
        lin(`${m}.experts.${e}.w1`, F, D), lin(`${m}.experts.${e}.w2`, D, F), lin(`${m}.experts.${e}.w3`, F, D)));
      const block = new SparseMoeBlock(gate, experts, router!, i, config.extensions.gate_scale ?? 1);
      if (g.gate2Rows > 0) block.setGate2(new Linear(src.get(`${m}.gate2.weight`, [g.gate2Rows, D], { type: 'router', rowKind: 'null' })));
      block.checkRouter();
      ffn = block;
    } else {
      const F = config.intermediateSize;
      ffn = new LlamaMLP(lin(`${p}.mlp.gate_proj`, F, D), lin(`${p}.mlp.up_proj`, F, D), lin(`${p}.mlp.down_proj`, D, F));
    }
    layers.push(new DecoderLayer(i, norm(`${p}.input_layernorm`), attn, norm(`${p}.post_attention_layernorm`), ffn));
  }
  const embed = new Embedding(src.get('model.embed_tokens.weight', [config.vocabSize, D], { type: 'embedding' }));
  const stack = new DecoderStack(embed, layers, norm('model.norm'));
  const head = config.tieWordEmbeddings ? null
    : new Linear(src.get('lm_head.weight', [config.vocabSize, D], { type: 'lm-head', fanIn: D }));
  const model = new CausalLM(config, stack, head);
  for (const key of LAYER_EXTENSION_KEYS) {
    if (config.extensions[key] === undefined) continue;
    const ext = layerExtensions.get(key);
    if (!ext) throw new Error(`${config.architecture}: config key moe_tune.${key} needs the adapter layers of src/lora; import 'moe-tune' (or src/lora/index.js) before building or loading this model`);
    ext.build(model, config, src);
  }
  return model;
}
