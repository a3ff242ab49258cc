/**
 * decompose-ffn (XMoE, paper 001 §3.1, §3.6), in place: each chosen dense Llama FFN
 * down(silu(gate(x)) * up(x)) of width F becomes N experts of width F/N in the XMoE layout
 * (architectures/xmoe.ts). Expert i owns the contiguous slice S_i = [i F/N, (i+1) F/N): rows S_i of
 * the gate and up projections, columns S_i of the down projection, so sum_i expert_i(x) = ffn(x) exactly (the
 * paper states eq. 4 for an element-wise activation; the SwiGLU split is the same cut).
 *
 * The routed layer computes sum_i p_i expert_i(x) (eq. 2), which is not the dense FFN. moe-tune's
 * own choice for converting a pretrained model (not the paper's, which trains such models from
 * scratch): a zero-initialised router (p_i = 1/N) and expert outputs scaled by N
 * (moe_tune.gate_scale), so with the paper's dense-training router (threshold t = 1, capacity
 * factor gamma = N: every token reaches every expert) the converted model computes the dense
 * model's logits. Lower t / gamma at inference to sparsify.
 *
 * The architecture becomes XMoEForCausalLM (moe_tune.gate_scale, expert_intermediate_size,
 * moe_layers, router).
 */
import type { CausalLM } from '../models/causal-lm.js';
import { DecoderLayer } from '../models/decoder-layer.js';
import { layoutOf } from '../models/architectures/index.js';
import { xmoe } from '../models/architectures/xmoe.js';
import { Linear } from '../models/linear.js';
import { GatedMLP } from '../models/mlp.js';
import { SparseMoeBlock } from '../models/moe-block.js';
import { createRouter } from '../routers/registry.js';
import type { RouterSpec } from '../routers/router.js';
import { Tensor } from '../tensor/index.js';
import { isAdapterWrapper, pathSelected, type TargetPatterns } from '../lora/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import type { SurgeryPass } from './surgery-pass.js';

export interface DecomposeOptions {
  /** Experts per FFN (N); the FFN width must be a multiple of it. */
  experts: number;
  /** Decoder layers to decompose (default: all); the others keep their dense FFN. */
  layers?: readonly number[];
  /** Router of the decomposed layers (default: paper 001's dense setting, threshold t = 1, capacity = N). */
  router?: RouterSpec;
}

/** Paper 001's dense-training router for N experts: threshold t = 1, capacity factor gamma = N. */
export function denseThresholdRouter(N: number): RouterSpec {
  return { name: 'threshold', t: 1, capacity: N };
}

/** Rows [lo, hi) of a row-major [rows, cols] matrix. */
function sliceRows(w: Float32Array | Float64Array, cols: number, lo: number, hi: number): Float32Array | Float64Array {
  return w.slice(lo * cols, hi * cols);
}

/** Columns [lo, hi) of a row-major [rows, cols] matrix. */
function sliceCols(w: Float32Array | Float64Array, rows: number, cols: number, lo: number, hi: number): Float32Array | Float64Array {
  const n = hi - lo;
  const out = w instanceof Float64Array ? new Float64Array(rows * n) : new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) out.set(w.subarray(r * cols + lo, r * cols + hi), r * n);
  return out;
}

function chosenLayers(model: CausalLM, layers: readonly number[] | undefined): number[] {
  return layers ? [...new Set(layers)].sort((a, b) => a - b) : Array.from({ length: model.config.numLayers }, (_, i) => i);
}

export function decomposeFfnPass(opts: DecomposeOptions, spec?: string): SurgeryPass {
  const N = opts.experts;
  return {
    name: 'decompose-ffn',
    spec,
    configKeys: ['moe_tune.gate_scale', 'moe_tune.expert_intermediate_size', 'moe_tune.moe_layers', 'moe_tune.router'],
    check(model) {
      const c = model.config;
      if (c.moe) return `${c.architecture} already has MoE layers; decompose-ffn takes a dense Llama`;
      if (c.mlpBias) return `${c.architecture} has MLP biases; decompose-ffn takes bias-free projections`;
      if (c.attention.qkvBias || c.attention.oBias || c.attention.qkNorm !== 'none' || c.attention.clipQkv !== null) {
        return `${c.architecture}'s attention is not Llama's plain attention (the XMoE layout has none of its biases / q-k norms)`;
      }
      const dense = layoutOf(c).names;
      if (!Number.isInteger(N) || N < 1) return `experts must be a positive integer, got ${N}`;
      if (c.intermediateSize % N !== 0) return `intermediate_size ${c.intermediateSize} is not a multiple of experts=${N} (expert i owns an equal contiguous slice)`;
      if (opts.layers) {
        if (opts.layers.length === 0) return 'layers is empty';
        for (const l of opts.layers) {
          if (!Number.isInteger(l) || l < 0 || l >= c.numLayers) return `layer ${l} is not in [0, ${c.numLayers})`;
        }
      }
      const layers = chosenLayers(model, opts.layers);
      for (const i of layers) {
        const ffn = model.model.layers.at(i).ffn;
        if (!(ffn instanceof GatedMLP)) return `model.layers.${i} has no dense MLP`;
        for (const role of ['gate', 'up', 'down'] as const) {
          const lin = ffn[role];
          const name = `model.layers.${i}.${dense.mlp}.${dense.mlpProj[role]}`;
          if (isAdapterWrapper(lin)) return `${name} has an adapter; merge LoRA (mergeLora) before decomposing`;
          if (!(lin instanceof Linear)) return `${name} is a ${lin.constructor.name}, not a plain linear`;
        }
      }
      // adapters recorded in the config must select the same linears after decomposition
      const ext = c.extensions;
      for (const [key, targets] of [['lora', ext.lora?.targets], ['mo_lora', ext.mo_lora?.targets]] as const) {
        if (!targets) continue;
        for (const i of layers) {
          const x = xmoe.names;
          const p = `model.layers.${i}.${x.moe}`;
          const paths = [`${p}.${x.router}`, ...Array.from({ length: N }, (_, e) => Object.values(x.expertProj).map((w) => `${p}.${x.experts}.${e}.${w}`)).flat()];
          const hit = paths.find((path) => pathSelected(path, { targets: targets as TargetPatterns }));
          if (hit) return `moe_tune.${key} targets would also select ${hit} after decomposition; decompose before adding adapters`;
        }
      }
      return null;
    },
    apply(model, ctx) {
      const F = model.config.intermediateSize;
      const Fe = F / N;
      const layers = chosenLayers(model, opts.layers);
      const routerSpec = opts.router ?? denseThresholdRouter(N);
      const router = createRouter(routerSpec);
      editModelConfig(model, (json) => {
        json['architectures'] = [xmoe.name];
        json['model_type'] = xmoe.modelType;
        json[xmoe.expertsKey!] = N;
        json['num_experts_per_tok'] = N;
        const ext = moeTuneOf(json);
        ext['gate_scale'] = N;
        ext['expert_intermediate_size'] = Fe;
        ext['router'] = { ...routerSpec };
        if (layers.length !== model.config.numLayers) ext['moe_layers'] = layers;
      }, 'decompose-ffn');
      for (const i of layers) {
        const layer = model.model.layers.at(i);
        const mlp = layer.ffn as GatedMLP;
        const g = (mlp.gate as Linear).weight;
        const u = (mlp.up as Linear).weight;
        const d = (mlp.down as Linear).weight;
        const D = g.shape[1]!;
        const rg = g.requiresGrad;
        const x = xmoe.names;
        const p = `model.layers.${i}.${x.moe}`;
        const experts = Array.from({ length: N }, (_, e) => {
          const lo = e * Fe;
          const hi = lo + Fe;
          const name = (role: 'gate' | 'up' | 'down'): string => `${p}.${x.experts}.${e}.${x.expertProj[role]}.weight`;
          return new GatedMLP(x.expertProj, {
            gate: new Linear(new Tensor(sliceRows(g.f, D, lo, hi), [Fe, D], rg, name('gate'))),
            down: new Linear(new Tensor(sliceCols(d.f, D, F, lo, hi), [D, Fe], d.requiresGrad, name('down'))),
            up: new Linear(new Tensor(sliceRows(u.f, D, lo, hi), [Fe, D], u.requiresGrad, name('up'))),
          });
        });
        const zeros = g.dtype === 'float64' ? new Float64Array(N * D) : new Float32Array(N * D);
        const gate = new Linear(new Tensor(zeros, [N, D], rg, `${p}.${x.router}.weight`));
        const block = new SparseMoeBlock(gate, experts, router, i, N, { routerName: x.router, expertsName: x.experts });
        block.checkRouter();
        model.setModule(`model.layers.${i}`, new DecoderLayer(i, layer.input_layernorm, layer.self_attn, layer.post_attention_layernorm, block, x.moe));
      }
      ctx.note(`${layers.length} of ${model.config.numLayers} layers: FFN width ${F} -> ${N} experts of width ${Fe} (expert i owns rows/columns [i*${Fe}, (i+1)*${Fe})); router ${routerSpec.name}${Object.entries(routerSpec).filter(([k]) => k !== 'name').map(([k, v]) => ` ${k}=${v}`).join('')}`);
      ctx.note(`moe-tune's conversion (not paper 001's): zero router (p_i = 1/${N}) and outputs scaled by gate_scale=${N}, so at t = 1, gamma = ${N} the model computes the dense logits`);
    },
  };
}
