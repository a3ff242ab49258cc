/**
 * Loading memory (issue 5): builds a ~500 MB checkpoint (a Mixtral-style model written in bf16,
 * sharded), then loads it in a fresh process and reports its peak RSS against the model's float32
 * bytes plus its largest tensor (loading must never hold more than that, beyond the runtime).
 *
 *   npm run bench -- --load-memory
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCheckpoint } from '../src/io/index.js';
import { loadModel } from '../src/models/load.js';
import { configFromJson } from '../src/models/create.js';
import { fillNormal, Rng } from '../src/tensor/index.js';

export const LOAD_CONFIG = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 32000, hidden_size: 1024,
  intermediate_size: 2048, num_hidden_layers: 6, num_attention_heads: 16, num_key_value_heads: 4,
  rms_norm_eps: 1e-5, rope_theta: 1e6, max_position_embeddings: 4096, tie_word_embeddings: false,
  num_local_experts: 6, num_experts_per_tok: 2, router_aux_loss_coef: 0.02, sliding_window: null,
};

export interface LoadMemoryResult {
  checkpoint_mb: number;
  params: number;
  float32_mb: number;
  largest_tensor_mb: number;
  baseline_rss_mb: number;
  peak_rss_mb: number;
  /** peak RSS - the runtime's baseline RSS (node + modules before loading). */
  load_rss_mb: number;
  bound_mb: number;
  load_s: number;
}

/** The tensors of a model config (name, shape), as the builder asks for them. */
function tensorList(): { name: string; shape: number[] }[] {
  const c = configFromJson(LOAD_CONFIG);
  const D = c.hiddenSize;
  const F = c.intermediateSize;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, D] }];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [D] }, { name: `${p}.post_attention_layernorm.weight`, shape: [D] });
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [c.numHeads * c.headDim, D] });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [c.numKvHeads * c.headDim, D] });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [c.numKvHeads * c.headDim, D] });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [D, c.numHeads * c.headDim] });
    out.push({ name: `${p}.block_sparse_moe.gate.weight`, shape: [c.moe!.numExperts, D] });
    for (let e = 0; e < c.moe!.numExperts; e++) {
      const q = `${p}.block_sparse_moe.experts.${e}`;
      out.push({ name: `${q}.w1.weight`, shape: [F, D] }, { name: `${q}.w2.weight`, shape: [D, F] }, { name: `${q}.w3.weight`, shape: [F, D] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [D] }, { name: 'lm_head.weight', shape: [c.vocabSize, D] });
  return out;
}

async function build(dir: string): Promise<void> {
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...LOAD_CONFIG, torch_dtype: 'bfloat16' }));
  const rng = new Rng(1);
  // lazy data: the writer asks for one tensor at a time, so building needs one tensor of memory too
  const tensors = tensorList().map(({ name, shape }) => ({
    name, dtype: 'BF16' as const, shape,
    data: () => {
      const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
      fillNormal(a, 0.02, rng);
      return a;
    },
  }));
  await writeCheckpoint(dir, tensors, { maxShardBytes: 200_000_000 });
}

function child(dir: string): void {
  const baseline = process.memoryUsage().rss;
  const t0 = performance.now();
  const { model } = loadModel(dir);
  const loadS = (performance.now() - t0) / 1000;
  let params = 0;
  let largest = 0;
  for (const [, t] of model.namedParameters()) {
    params += t.size;
    largest = Math.max(largest, t.size);
  }
  process.stdout.write(JSON.stringify({ baseline, peak: process.resourceUsage().maxRSS * 1024, params, largest, loadS }) + '\n');
}

export async function runLoadMemoryBench(): Promise<LoadMemoryResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-tune-load-'));
  try {
    await build(dir);
    const bytes = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
    const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { baseline: number; peak: number; params: number; largest: number; loadS: number };
    const mb = (b: number): number => b / 2 ** 20;
    const result: LoadMemoryResult = {
      checkpoint_mb: mb(bytes),
      params: r.params,
      float32_mb: mb(r.params * 4),
      largest_tensor_mb: mb(r.largest * 4),
      baseline_rss_mb: mb(r.baseline),
      peak_rss_mb: mb(r.peak),
      load_rss_mb: mb(r.peak - r.baseline),
      bound_mb: mb(r.params * 4 + r.largest * 4),
      load_s: r.loadS,
    };
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--child') child(process.argv[3]!);
  else runLoadMemoryBench().then((r) => console.log(JSON.stringify(r, null, 2)));
}
