/**
 * Before a model is built: do its tensors fit what this process can allocate? A config such as
 * `hidden_size: 1e12` or `num_local_experts: 1000000` otherwise fails deep inside a typed-array constructor
 * ("Invalid typed array length") or allocates for minutes until memory runs out. The check multiplies out the
 * shapes the builder will ask for (build.ts) and compares
 *
 * - each tensor's element count with the largest typed array V8 creates, and
 * - the float32 bytes of all parameters with the machine's memory (os.totalmem),
 *
 * and names the config field that makes the model too big (the one with the largest share of it).
 */
import { constants as bufferConstants } from 'node:buffer';
import * as os from 'node:os';
import type { ModelConfig } from './config.js';

/** The largest typed array length V8 allocates here. */
export const MAX_TYPED_ARRAY_LENGTH = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32 - 1);

interface TensorGroup {
  what: string;
  /** Elements of one tensor of the group. */
  elements: number;
  /** Tensors in the group. */
  count: number;
  /** The config fields (and values) the shape comes from. */
  fields: [string, number][];
}

function expertsField(raw: Record<string, unknown>): string {
  return ['num_local_experts', 'num_experts', 'n_routed_experts'].find((k) => typeof raw[k] === 'number') ?? 'num_local_experts';
}

function groups(c: ModelConfig): TensorGroup[] {
  const D: [string, number] = ['hidden_size', c.hiddenSize];
  const V: [string, number] = ['vocab_size', c.vocabSize];
  const L = c.numLayers;
  const qOut = c.numHeads * c.headDim;
  const kvOut = c.numKvHeads * c.headDim;
  const moeLayers = c.moe?.layers.length ?? 0;
  const dense = L - moeLayers;
  const out: TensorGroup[] = [
    { what: 'embed_tokens', elements: c.vocabSize * c.hiddenSize, count: c.tieWordEmbeddings ? 1 : 2, fields: [V, D] },
    { what: 'q_proj / o_proj', elements: qOut * c.hiddenSize, count: 2 * L, fields: [['num_attention_heads', c.numHeads], ['head_dim', c.headDim], D, ['num_hidden_layers', L]] },
    { what: 'k_proj / v_proj', elements: kvOut * c.hiddenSize, count: 2 * L, fields: [['num_key_value_heads', c.numKvHeads], ['head_dim', c.headDim], D, ['num_hidden_layers', L]] },
    { what: 'norms', elements: c.hiddenSize, count: 2 * L + 1, fields: [D, ['num_hidden_layers', L]] },
  ];
  if (dense > 0) out.push({ what: 'mlp', elements: c.intermediateSize * c.hiddenSize, count: 3 * dense, fields: [['intermediate_size', c.intermediateSize], D, ['num_hidden_layers', L]] });
  if (c.moe) {
    const E: [string, number] = [expertsField(c.raw), c.moe.numExperts];
    const F: [string, number] = [c.moe.expertIntermediateSize === c.intermediateSize ? 'intermediate_size' : 'moe_tune.expert_intermediate_size', c.moe.expertIntermediateSize];
    out.push({ what: 'experts', elements: c.moe.expertIntermediateSize * c.hiddenSize, count: 3 * c.moe.numExperts * moeLayers, fields: [E, F, D, ['num_hidden_layers', L]] });
    out.push({ what: 'router', elements: c.moe.numExperts * c.hiddenSize, count: moeLayers, fields: [E, D] });
  }
  return out;
}

function gib(bytes: number): string {
  return bytes >= 2 ** 40 * 1024 ? `${(bytes / 2 ** 40).toExponential(2)} TiB` : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** The field with the largest value among those a tensor's size comes from (the one to blame). */
function culprit(fields: [string, number][]): [string, number] {
  return fields.reduce((a, b) => (b[1] > a[1] ? b : a));
}

export interface AllocationBudget {
  /** Bytes the parameters may take (default: os.totalmem()). */
  maxBytes?: number;
  /** Elements one tensor may have (default MAX_TYPED_ARRAY_LENGTH). */
  maxElements?: number;
}

/** Float32 parameter bytes of a model built from `c` (an estimate that counts every tensor build.ts allocates). */
export function parameterBytes(c: ModelConfig): number {
  return groups(c).reduce((s, g) => s + g.elements * g.count * 4, 0);
}

/** Throws one line naming `where`, the field and the sizes when the model cannot be allocated; see the file comment. */
export function checkAllocatable(c: ModelConfig, where: string, budget: AllocationBudget = {}): void {
  const maxElements = budget.maxElements ?? MAX_TYPED_ARRAY_LENGTH;
  const maxBytes = budget.maxBytes ?? os.totalmem();
  const gs = groups(c);
  for (const g of gs) {
    if (!Number.isSafeInteger(g.elements) || g.elements > maxElements) {
      const [field, value] = culprit(g.fields);
      throw new Error(`${where}: field '${field}' = ${value}: one ${g.what} tensor would hold ${g.elements.toExponential(3)} values (${g.fields.map(([f, v]) => `${f} ${v}`).join(' x ')}), more than the ${maxElements} a typed array can hold`);
    }
  }
  const bytes = gs.reduce((s, g) => s + g.elements * g.count * 4, 0);
  if (bytes > maxBytes) {
    const biggest = gs.reduce((a, b) => (b.elements * b.count > a.elements * a.count ? b : a));
    const [field, value] = culprit(biggest.fields);
    throw new Error(`${where}: field '${field}' = ${value}: the model's parameters would take ${gib(bytes)} as float32 (${biggest.what}: ${biggest.count} x ${biggest.elements} values), more than this machine's ${gib(maxBytes)} of memory`);
  }
}
