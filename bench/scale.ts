/**
 * The `--scale` run (issue 17; a benchmark, not a test, not in CI): builds a random bf16 checkpoint
 * of OLMoE-1B-7B's shape in Mixtral layout on disk (16 layers, 64 experts top-8, d 2048, expert
 * width 1024, vocabulary 50304: 6.9B parameters, ~13.8 GB in 7 shards), then, each in a fresh
 * process (peak RSS is per process):
 *
 *   read    the time to read every shard once (the disk-speed reference; page cache as it is)
 *   load    loadModelQuantized: NF4 (double quantisation) straight from the bf16 bytes
 *   train   QLoRA: the NF4 base + LoRA r 8 on q/k/v/o/w1/w2/w3, AdamW, batch 1 x seq 128:
 *           tokens/s of the timed steps and peak RSS
 *   recipe  `moe-tune train` with a bad recipe on this checkpoint: seconds until it fails
 *
 *   npm run bench -- --scale [--dir DIR] [--keep] [--steps N] [--only read,load,train,recipe]
 *
 * With MOE_TUNE_MEMTRACE=1 the train child prints where the last step took its pooled bytes, by op.
 *
 * The checkpoint is deleted afterwards unless --keep (a kept DIR is reused by the next run).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeCheckpoint, type TensorToWrite } from '../src/io/index.js';
import { applyLora } from '../src/lora/index.js';
import { bf16Embeddings, bf16Sites, loadModelQuantized } from '../src/quant/index.js';
import { allocationTrace, getBackend, poolStats, Rng } from '../src/tensor/index.js';
import type { TrainBatchSource } from '../src/train/data-source.js';
import { Trainer } from '../src/train/trainer.js';

export const OLMOE_SCALE_CONFIG = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 50304, hidden_size: 2048,
  intermediate_size: 1024, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 16,
  rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096, tie_word_embeddings: false, hidden_act: 'silu',
  num_local_experts: 64, num_experts_per_tok: 8, router_aux_loss_coef: 0.01, sliding_window: null, torch_dtype: 'bfloat16',
};

type Cfg = typeof OLMOE_SCALE_CONFIG;

/** The layers QLoRA leaves in its 16-bit compute dtype (frozen; loadModelQuantized bf16Frozen). */
const BF16_FROZEN = ['lm_head', 'model.embed_tokens'];

/** Every tensor of the checkpoint (name, shape) in the order transformers' save would list them. */
export function scaleTensorList(c: Cfg = OLMOE_SCALE_CONFIG): { name: string; shape: number[] }[] {
  const D = c.hidden_size;
  const F = c.intermediate_size;
  const hd = D / c.num_attention_heads;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, D] }];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [D] }, { name: `${p}.post_attention_layernorm.weight`, shape: [D] });
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [c.num_attention_heads * hd, D] });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [c.num_key_value_heads * hd, D] });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [c.num_key_value_heads * hd, D] });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [D, c.num_attention_heads * hd] });
    out.push({ name: `${p}.block_sparse_moe.gate.weight`, shape: [c.num_local_experts, D] });
    for (let e = 0; e < c.num_local_experts; e++) {
      const q = `${p}.block_sparse_moe.experts.${e}`;
      out.push({ name: `${q}.w1.weight`, shape: [F, D] }, { name: `${q}.w2.weight`, shape: [D, F] }, { name: `${q}.w3.weight`, shape: [F, D] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [D] }, { name: 'lm_head.weight', shape: [c.vocab_size, D] });
  return out;
}

/**
 * Writes the checkpoint: bf16 N(0, 0.02) values (norm weights 1). Random values come from one pool
 * of 2^24 bf16 values; each tensor takes a run of it starting at a tensor-dependent offset, so
 * writing runs at disk speed and no two neighbouring tensors are equal.
 */
export async function buildScaleCheckpoint(dir: string, c: Cfg = OLMOE_SCALE_CONFIG): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const POOL = 1 << 24;
  const rng = new Rng(17);
  const pool = new Uint16Array(POOL + (1 << 22));
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < pool.length; i++) {
    f[0] = rng.normal() * 0.02;
    pool[i] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16;
  }
  const one = 0x3f80; // bf16 1.0
  let k = 0;
  const tensors: TensorToWrite[] = scaleTensorList(c).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const start = (k++ * 2654435761) % (1 << 22);
    return {
      name, dtype: 'BF16', shape,
      data: () => {
        if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') return new Uint16Array(n).fill(one);
        if (n <= POOL) return pool.subarray(start, start + n);
        const out = new Uint16Array(n);
        for (let o = 0; o < n; o += POOL) out.set(pool.subarray(start, start + Math.min(POOL, n - o)), o);
        return out;
      },
    };
  });
  await writeCheckpoint(dir, tensors, { maxShardBytes: 2_000_000_000 });
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function childRead(dir: string): Record<string, number> {
  const buf = Buffer.allocUnsafe(1 << 26);
  let bytes = 0;
  const t0 = performance.now();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.safetensors')).sort()) {
    const fd = fs.openSync(path.join(dir, f), 'r');
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      bytes += n;
    }
    fs.closeSync(fd);
  }
  const s = (performance.now() - t0) / 1000;
  return { read_s: s, bytes, gb_per_s: bytes / s / 1e9 };
}

/** CPU seconds (user + system, all threads) since `from` (the machine's other load does not count). */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
}

function childLoad(dir: string): Record<string, number> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const q = loadModelQuantized(dir, { bf16Frozen: BF16_FROZEN });
  const s = (performance.now() - t0) / 1000;
  return {
    load_s: s, load_cpu_s: cpuSeconds(c0), peak_rss_mib: peakRssMiB(), quantized_params: q.stats.quantizedParams,
    quantized_bytes: q.stats.quantizedBytes, float_params: q.stats.floatParams, threads: getBackend().threads,
  };
}

function randomBatches(vocab: number, seqLen: number): TrainBatchSource {
  const rng = new Rng(5);
  let taken = 0;
  return {
    batchesPerEpoch: null,
    next() {
      const ids = new Int32Array(seqLen);
      for (let i = 0; i < seqLen; i++) ids[i] = 3 + rng.int(vocab - 3);
      const labels = new Int32Array(seqLen);
      for (let i = 0; i < seqLen; i++) labels[i] = i + 1 === seqLen ? -100 : ids[i + 1]!;
      taken++;
      return { batchSize: 1, seqLen, inputIds: ids, labels };
    },
    state: () => ({ taken }),
    restore: () => {},
  };
}

function childTrain(dir: string, steps: number, seqLen: number): Record<string, unknown> {
  const t0 = performance.now();
  // the frozen head and embeddings stay in the checkpoint's bf16, as QLoRA keeps them (exact; half the bytes)
  const { model } = loadModelQuantized(dir, { bf16Frozen: BF16_FROZEN });
  const bf16 = [...bf16Embeddings(model).map(([p]) => p), ...bf16Sites(model).map((s) => s.path)];
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = peakRssMiB();
  applyLora(model, { targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w2', 'w3'], r: 8, alpha: 16, seed: 1 });
  // MOE_TUNE_SCALE_PER_EXPERT=1: the one-expert-at-a-time path (what the grouped kernels replace), for comparison
  const perExpert = process.env['MOE_TUNE_SCALE_PER_EXPERT'] === '1';
  if (perExpert) for (const b of model.moeBlocks()) b.grouped = false;
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-bench-run-'));
  const trainer = new Trainer({
    model, runDir, train: randomBatches(OLMOE_SCALE_CONFIG.vocab_size, seqLen),
    config: { steps: steps + 1, lr: 1e-4, warmupSteps: 0, trainable: ['current'], checkpointEvery: 0, seed: 1 },
  });
  const stepMs: number[] = [];
  const stepCpu: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < steps + 1; s++) {
    const a = performance.now();
    const c = process.cpuUsage();
    const m = trainer.trainStep();
    stepMs.push(performance.now() - a);
    stepCpu.push(cpuSeconds(c));
    losses.push(m.loss);
    const pool = poolStats();
    process.stderr.write(`step ${s}: ${(stepMs[s]! / 1000).toFixed(2)} s (${stepCpu[s]!.toFixed(1)} CPU s), loss ${m.loss.toFixed(4)}, rss ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB, pool peak ${(pool.peakLiveBytes / 2 ** 30).toFixed(3)} GiB\n`);
    // MOE_TUNE_MEMTRACE=1: where the step's pooled bytes were taken, op by op
    const trace = allocationTrace(true);
    if (trace && s === steps) for (const [site, b] of trace.slice(0, 20)) process.stderr.write(`  ${(b / 2 ** 20).toFixed(1).padStart(8)} MiB  ${site}\n`);
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  const timed = stepMs.slice(1);
  const best = Math.min(...timed);
  return {
    expert_path: perExpert ? 'one expert at a time' : 'grouped', bf16_layers: bf16, load_s: loadS, rss_after_load_mib: rssAfterLoad, peak_rss_mib: peakRssMiB(), seq_len: seqLen, step_ms: stepMs, step_cpu_s: stepCpu,
    tokens_per_s_best: seqLen / (best / 1000), tokens_per_s_mean: (seqLen * timed.length) / (timed.reduce((a, b) => a + b, 0) / 1000),
    losses,
  };
}

function childRecipe(dir: string): Record<string, unknown> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-recipe-'));
  const recipe = path.join(tmp, 'bad.yaml');
  // an aux loss that needs null experts on a model without them (the first example)
  fs.writeFileSync(recipe, 'name: scale-bad\npaper: none\nkind: finetune\ntrain: {lr: 1.0e-4, steps: 3, batch_size: 1, seq_len: 128}\nquantization:\n  method: nf4\nlora:\n  r: 8\n  alpha: 16\n  targets: [q_proj, k_proj, v_proj, o_proj, w1, w2, w3]\naux_losses:\n  - name: adamoe-balance\n    weight: 0.01\n');
  const data = path.join(tmp, 'data.jsonl');
  fs.writeFileSync(data, '{"text": "hello world"}\n');
  // the installed command (dist/, built by npm ci) as a user runs it; the sources through tsx otherwise
  const built = fs.existsSync(path.join(here, '..', 'dist', 'cli', 'main.js'));
  const cli = built ? [path.join(here, '..', 'bin', 'moe-tune.js')] : ['--import', 'tsx', path.join(here, '..', 'src', 'cli', 'main.ts')];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [...cli, 'train', '--recipe', recipe, '--model', dir, '--data', data, '--out', path.join(tmp, 'run')], { encoding: 'utf8', timeout: 900_000 });
  const s = (performance.now() - t0) / 1000;
  fs.rmSync(tmp, { recursive: true, force: true });
  return { fail_s: s, cli: built ? 'bin/moe-tune.js (dist)' : 'tsx src/cli/main.ts', exit: r.status, error: r.stderr.trim().split('\n').filter((l) => l.startsWith('moe-tune:')).pop() ?? r.stderr.trim().split('\n').pop() };
}

function runChild(what: string, dir: string, extra: string[] = []): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', what, dir, ...extra], {
    encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`scale bench (${what}) exited ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

export interface ScaleBenchOptions {
  dir?: string;
  keep?: boolean;
  steps?: number;
  seqLen?: number;
  only?: string[];
}

export async function runScaleBench(o: ScaleBenchOptions = {}): Promise<Record<string, unknown>> {
  const dir = o.dir ?? path.join(os.tmpdir(), 'moe-tune-scale-olmoe');
  const only = new Set(o.only ?? ['read', 'load', 'train', 'recipe']);
  const result: Record<string, unknown> = { dir, config: OLMOE_SCALE_CONFIG };
  try {
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      const t0 = performance.now();
      await buildScaleCheckpoint(dir);
      result['build_s'] = (performance.now() - t0) / 1000;
    }
    result['checkpoint_bytes'] = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
    for (const what of ['read', 'load', 'train', 'recipe']) {
      if (!only.has(what)) continue;
      const r = runChild(what, dir, [String(o.steps ?? 3), String(o.seqLen ?? 128)]);
      result[what] = r;
      console.error(`${what}: ${JSON.stringify(r)}`);
    }
    return result;
  } finally {
    if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const [, what, dir, steps, seq] = args as [string, string, string, string, string];
    const r = what === 'read' ? childRead(dir) : what === 'load' ? childLoad(dir) : what === 'train' ? childTrain(dir, Number(steps), Number(seq)) : childRecipe(dir);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    const value = (name: string): string | undefined => {
      const i = args.indexOf(name);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const r = await runScaleBench({
      dir: value('--dir'), keep: args.includes('--keep'), steps: value('--steps') ? Number(value('--steps')) : undefined,
      only: value('--only')?.split(','),
    });
    console.log(JSON.stringify(r, null, 2));
  }
}
