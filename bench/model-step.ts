/**
 * Times one full training step (forward, backward, AdamW) of a bench config on our engine and, in
 * the same run, the peer a user would pick instead on the same weights and batch, and compares the
 * first-step losses. The peer is transformers (+ PEFT for LoRA) on torch 2.x (bench/hf_ref.py, with
 * the Python of ../shared/python-interop.md: MOE_TUNE_PYTHON or .venv-py); AdaMoE's null experts
 * are not in transformers, so that config runs bench/torch_ref.py (the same math written eagerly)
 * on the same torch 2.x; without the venv every config falls back to bench/torch_ref.py on
 * /usr/bin/python3 (labelled in the result's peer field).
 *
 * Run one config per process (peak RSS is per process): node --import tsx bench/model-step.ts NAME
 * Prints one JSON object.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/index.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { createModel } from '../src/models/create.js';
import { nextTokenTargets, type CausalLM } from '../src/models/causal-lm.js';
import { saveModel, stateDict } from '../src/models/save.js';
import { AdamW } from '../src/train/adamw.js';
import { backward, getBackend, poolStats, Rng, Tensor, withScope, zeroGrad } from '../src/tensor/index.js';
import { kernelTimings, resetKernelTimings, type KernelTiming } from '../src/tensor/backends/profiler.js';
import { BENCH_CONFIGS, type BenchConfig } from './configs.js';
import { prepareVariant } from './variants.js';

export interface StepResult {
  name: string;
  backend: string;
  threads: number;
  tokens: number;
  ms_per_step: number;
  ms_all: number[];
  tokens_per_s: number;
  gflop_per_step: number;
  gflops: number;
  first_loss: number;
  load: number | null;
  peak_rss_mb: number;
  /** Pooled memory one step uses (activations, saved tensors, intermediate gradients), MiB. */
  activation_mb: number;
  /** Bytes of the model's parameter tensors (float; 4-bit layers are not parameters), MiB. */
  param_mb: number;
  torch_ms_per_step: number | null;
  torch_first_loss: number | null;
  torch_load: number | null;
  torch_note?: string;
  /** What the peer column ran (library versions, or the fallback script). */
  peer?: string;
  ratio: number | null;
  loss_rel_diff: number | null;
  /** With MOE_TUNE_PROFILE=1: ms per step in each kernel, and the rest (TypeScript side). */
  profile?: { kernels: KernelTiming[]; outside_kernels_ms: number };
}

/**
 * Matmul FLOPs of one step: a forward pass (attention scores causal-halved) times 3 when the base
 * trains (forward, input gradients, weight gradients) or 2 when it is frozen under LoRA (no weight
 * gradients; the rank-r adapter products are left out).
 */
export function stepFlops(c: Record<string, number>, T: number, B: number, load: number, trainsBase = true): number {
  const D = c['hidden_size']!;
  const H = c['num_attention_heads']!;
  const Hkv = c['num_key_value_heads'] ?? H;
  const Dh = D / H;
  const F = c['intermediate_size']!;
  const N = c['num_local_experts'] ?? 0;
  const V = c['vocab_size']!;
  const L = c['num_hidden_layers']!;
  const perTokenLayer = 2 * D * (2 * H * Dh + 2 * Hkv * Dh) + 2 * 2 * H * Dh * (T + 1) / 2
    + (N > 0 ? 2 * D * N + load * 3 * 2 * D * F : 3 * 2 * D * F);
  const fwd = B * T * (L * perTokenLayer + 2 * D * V);
  return (trainsBase ? 3 : 2) * fwd;
}

function batchFor(cfg: BenchConfig): { ids: Tensor; targets: Tensor } {
  const rng = new Rng(1234);
  const V = cfg.config['vocab_size'] as number;
  const ids = new Int32Array(cfg.batch * cfg.seqLen);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(V);
  const t = new Tensor(ids, [cfg.batch, cfg.seqLen]);
  return { ids: t, targets: nextTokenTargets(t) };
}

/** The Python with torch 2.x + transformers + peft (../shared/python-interop.md), or null. */
function venvPython(): string | null {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const py = process.env['MOE_TUNE_PYTHON'] ?? path.join(root, '.venv-py', 'bin', 'python');
  if (!fs.existsSync(py)) return null;
  try {
    execFileSync(py, ['-c', 'import torch, transformers, peft'], { stdio: 'ignore', timeout: 120_000 });
    return py;
  } catch {
    return null;
  }
}

type PeerResult = { ms: number; loss: number; load: number | null; peer: string };

function runPython(py: string, script: string, spec: Record<string, unknown>, dir: string): Record<string, unknown> {
  fs.writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
  const out = execFileSync(py, [path.join(path.dirname(new URL(import.meta.url).pathname), script), path.join(dir, 'spec.json')], {
    encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, OMP_NUM_THREADS: String(getBackend().threads) },
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

/**
 * The peer on the initial weights: `base` is the model before LoRA (transformers loads it from a
 * saved directory; PEFT adds its own LoRA with B = 0, so the first losses compare), `model` the
 * model the eager script gets (null experts included).
 */
async function runPeer(cfg: BenchConfig, base: CausalLM, model: CausalLM, ids: Tensor, targets: Tensor, steps: number): Promise<PeerResult | string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moe-tune-bench-'));
  const common = { steps, warmup: 2, threads: getBackend().threads, lr: cfg.lr, betas: [0.9, 0.95], weight_decay: 0.1, eps: 1e-8 };
  try {
    fs.writeFileSync(path.join(dir, 'batch.json'), JSON.stringify({
      ids: chunk(Array.from(ids.i32), cfg.seqLen), targets: chunk(Array.from(targets.i32), cfg.seqLen),
    }));
    const batch = path.join(dir, 'batch.json');
    const py = venvPython();
    if (py && !cfg.nullExperts) {
      const modelDir = path.join(dir, 'model');
      await saveModel(base, modelDir, { force: true });
      const lora = cfg.lora ? { r: cfg.lora.r, alpha: cfg.lora.alpha, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w2', 'w3'], experts: true } : null;
      const r = runPython(py, 'hf_ref.py', { ...common, model_dir: modelDir, batch, lora }, dir);
      const what = `${String(r['peer'])}${cfg.lora?.quantize ? '; float32 base: bitsandbytes has no CPU NF4 kernels' : ''}`;
      return { ms: r['ms_per_step'] as number, loss: r['first_loss'] as number, load: null, peer: what };
    }
    const eager = py ?? '/usr/bin/python3';
    try {
      execFileSync(eager, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    } catch {
      return 'PyTorch not found (make the venv of ../shared/python-interop.md, or apt-get install python3-torch python3-numpy)';
    }
    if (cfg.lora) return 'no LoRA reference without PEFT (make the venv of ../shared/python-interop.md)';
    writeSafetensors(path.join(dir, 'w.safetensors'), stateDict(model).map(([name, data, shape]) => ({ name, dtype: 'F32', shape, data })));
    const r = runPython(eager, 'torch_ref.py', {
      ...common, config: model.config.raw, weights: path.join(dir, 'w.safetensors'), batch,
      null_experts: cfg.nullExperts?.m ?? 0, null_top_k: cfg.nullExperts?.topK ?? 0,
    }, dir);
    const why = py ? 'transformers has no null experts' : 'fallback: no transformers venv';
    return { ms: r['ms_per_step'] as number, loss: r['first_loss'] as number, load: r['load'] as number | null, peer: `eager PyTorch script bench/torch_ref.py, torch ${String(r['torch_version'])} (${why})` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function chunk(a: number[], n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.length; i += n) out.push(a.slice(i, i + n));
  return out;
}

export async function runModelStep(name: string, opts: { steps?: number; torch?: boolean } = {}): Promise<StepResult> {
  const cfg = BENCH_CONFIGS.find((c) => c.name === name);
  if (!cfg) throw new Error(`unknown bench config '${name}' (valid: ${BENCH_CONFIGS.map((c) => c.name).join(', ')})`);
  const steps = opts.steps ?? 5;
  const model = createModel(cfg.config, { seed: 42, std: 0.02 });
  const { ids, targets } = batchFor(cfg);
  // the peer's base weights are saved before the variant changes the model (LoRA wraps in place)
  const base = cfg.lora ? createModel(cfg.config, { seed: 42, std: 0.02 }) : model;
  const prepared = await prepareVariant(cfg, model, ids);
  const trainModel = prepared.model;
  const params = new Map([...trainModel.parameters()].filter(([, p]) => p.requiresGrad));
  const opt = new AdamW(params, { lr: cfg.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });

  // torch first, on the initial weights (before our optimizer changes them)
  const torch = opts.torch === false ? 'skipped (--no-torch)' : await runPeer(cfg, base, prepared.torchModel ?? model, ids, targets, steps);

  const times: number[] = [];
  const losses: number[] = [];
  const loads: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const t0 = performance.now();
    const r = withScope(() => {
      zeroGrad(params.values());
      const ctx = new ForwardContext(true, new Rng(s));
      const loss = trainModel.loss(ids, targets, ctx);
      const value = loss.item();
      const load = ctx.routing.length === 0 ? null
        : ctx.routing.reduce((a, r) => a + r.routing.stats.trueExpertsPerToken, 0) / ctx.routing.length;
      // as the Trainer's step: buffers go back to the pool as the walk passes their last reader
      backward(loss, undefined, { releaseScope: true });
      opt.update();
      return { loss: value, load };
    });
    const dt = performance.now() - t0;
    losses.push(r.loss);
    if (r.load !== null) loads.push(r.load);
    if (s >= 2) times.push(dt);
    if (s === 1) resetKernelTimings();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const ms = sorted[Math.floor(sorted.length / 2)]!;
  const tokens = cfg.batch * cfg.seqLen;
  const load = loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : null;
  const flops = stepFlops(cfg.config as Record<string, number>, cfg.seqLen, cfg.batch, load ?? 1, !cfg.lora);
  const t = typeof torch === 'string' ? null : torch;
  const kt = kernelTimings().map((k) => ({ kernel: k.kernel, calls: k.calls / steps, ms: k.ms / steps }));
  const profile = kt.length ? { kernels: kt, outside_kernels_ms: times.reduce((a, b) => a + b, 0) / steps - kt.reduce((a, k) => a + k.ms, 0) } : undefined;
  return {
    name,
    backend: getBackend().name,
    threads: getBackend().threads,
    tokens,
    ms_per_step: ms,
    ms_all: times,
    tokens_per_s: (tokens / ms) * 1000,
    gflop_per_step: flops / 1e9,
    gflops: flops / 1e9 / (ms / 1000),
    first_loss: losses[0]!,
    load,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    activation_mb: poolStats().pooledBytes / 2 ** 20,
    param_mb: [...trainModel.parameters().values()].reduce((a, p) => a + p.size * 4, 0) / 2 ** 20,
    torch_ms_per_step: t?.ms ?? null,
    torch_first_loss: t?.loss ?? null,
    torch_load: t?.load ?? null,
    ...(typeof torch === 'string' ? { torch_note: torch } : { peer: torch.peer }),
    ratio: t ? t.ms / ms : null,
    loss_rel_diff: t ? Math.abs(t.loss - losses[0]!) / Math.abs(t.loss) : null,
    ...(profile ? { profile } : {}),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const name = process.argv[2] ?? 'tiny-moe';
  const noTorch = process.argv.includes('--no-torch');
  const stepsArg = process.argv.find((a) => a.startsWith('--steps='));
  runModelStep(name, { torch: !noTorch, steps: stepsArg ? Number(stepsArg.slice(8)) : undefined })
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e: Error) => {
      console.error(`bench ${name}: ${e.message}`);
      process.exit(1);
    });
}
