/**
 * QLoRA benchmark (issue 8; a benchmark, not a test): training tokens/s and peak RSS of LoRA
 * fine-tuning on a 4-bit NF4 base against the same model with a float32 base.
 *
 * Each variant runs in its own child process (peak RSS is per process): it writes nothing but
 * loads the same float checkpoint (written once to a temp dir), either with loadModel (float) or
 * loadModelQuantized (NF4, quantised tensor by tensor while loading), puts LoRA r 8 on every
 * projection (q, k, v, o, w1, w2, w3), and times `steps` Trainer steps after `warmup` steps.
 *
 *   npx tsx bench/qlora.ts [--steps N] [--hidden D] [--layers L] [--experts E]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLora } from '../src/lora/index.js';
import { createModel } from '../src/models/create.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { loadModelQuantized, quantizedModelStats } from '../src/quant/index.js';
import { getBackend, Rng } from '../src/tensor/index.js';
import type { TrainBatchSource } from '../src/train/data-source.js';
import { Trainer } from '../src/train/trainer.js';

export interface QloraBenchOptions {
  hidden?: number;
  intermediate?: number;
  layers?: number;
  experts?: number;
  vocab?: number;
  batchSize?: number;
  seqLen?: number;
  /** Timed steps (after warmup). */
  steps?: number;
  warmup?: number;
  loraR?: number;
}

export interface QloraVariantResult {
  variant: 'float' | 'nf4';
  backend: string;
  tokensPerS: number;
  msPerStep: number;
  /** Peak resident set size of the process (MiB). */
  peakRssMiB: number;
  /** Bytes of the frozen base linears (float32, or NF4 with double quantisation). */
  baseLinearBytes: number;
  loadSeconds: number;
  /** Loss of the first and last timed step (sanity: both variants train). */
  firstLoss: number;
  lastLoss: number;
}

export interface QloraBenchResult {
  config: Required<QloraBenchOptions>;
  params: number;
  float: QloraVariantResult;
  nf4: QloraVariantResult;
  /** nf4 tokens/s divided by float tokens/s. */
  speedRatio: number;
  /** nf4 peak RSS divided by float peak RSS. */
  rssRatio: number;
}

const DEFAULTS: Required<QloraBenchOptions> = {
  hidden: 512, intermediate: 1024, layers: 4, experts: 8, vocab: 2000, batchSize: 2, seqLen: 256, steps: 6, warmup: 2, loraR: 8,
};

function modelConfig(o: Required<QloraBenchOptions>): Record<string, unknown> {
  return {
    architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: o.vocab, hidden_size: o.hidden,
    intermediate_size: o.intermediate, num_hidden_layers: o.layers, num_attention_heads: 8, num_key_value_heads: 4,
    rms_norm_eps: 1e-5, rope_theta: 1e6, max_position_embeddings: 4096, tie_word_embeddings: false, hidden_act: 'silu',
    num_local_experts: o.experts, num_experts_per_tok: 2, router_aux_loss_coef: 0.01, sliding_window: null,
  };
}

function randomBatches(o: Required<QloraBenchOptions>): TrainBatchSource {
  const rng = new Rng(5);
  let taken = 0;
  return {
    batchesPerEpoch: null,
    next() {
      const n = o.batchSize * o.seqLen;
      const ids = new Int32Array(n);
      for (let i = 0; i < n; i++) ids[i] = 3 + rng.int(o.vocab - 3);
      const labels = new Int32Array(n);
      for (let i = 0; i < n; i++) labels[i] = (i + 1) % o.seqLen === 0 ? -100 : ids[i + 1]!;
      taken++;
      return { batchSize: o.batchSize, seqLen: o.seqLen, inputIds: ids, labels };
    },
    state: () => ({ taken }),
    restore: () => {},
  };
}

/** One variant, in this process. */
export async function runQloraVariant(variant: 'float' | 'nf4', dir: string, o: Required<QloraBenchOptions>): Promise<QloraVariantResult> {
  const t0 = performance.now();
  const model = variant === 'nf4' ? loadModelQuantized(dir).model : loadModel(dir).model;
  const loadSeconds = (performance.now() - t0) / 1000;
  const stats = quantizedModelStats(model);
  let baseLinearBytes = stats.quantizedBytes;
  if (variant === 'float') {
    for (const [n, t] of model.namedParameters()) if (/(proj|\.w[123])\.weight$/.test(n)) baseLinearBytes += t.size * 4;
  }
  applyLora(model, { targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w2', 'w3'], r: o.loraR, alpha: 2 * o.loraR, seed: 1 });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), `qlora-bench-${variant}-`));
  const trainer = new Trainer({
    model, runDir, train: randomBatches(o),
    config: { steps: o.warmup + o.steps, lr: 1e-4, warmupSteps: 0, trainable: ['current'], checkpointEvery: 0, seed: 1 },
  });
  const losses: number[] = [];
  let timed = 0;
  for (let s = 0; s < o.warmup + o.steps; s++) {
    const a = performance.now();
    const m = trainer.trainStep();
    if (s >= o.warmup) {
      timed += performance.now() - a;
      losses.push(m.loss);
    }
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  const tokens = o.steps * o.batchSize * o.seqLen;
  return {
    variant, backend: getBackend().name, tokensPerS: tokens / (timed / 1000), msPerStep: timed / o.steps,
    peakRssMiB: process.resourceUsage().maxRSS / 1024, baseLinearBytes, loadSeconds,
    firstLoss: losses[0]!, lastLoss: losses[losses.length - 1]!,
  };
}

/** Writes the float checkpoint once and runs both variants in child processes. */
export async function runQloraBench(opts: QloraBenchOptions = {}): Promise<QloraBenchResult> {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: Required<QloraBenchOptions> = { ...DEFAULTS, ...given };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qlora-bench-model-'));
  try {
    const model = createModel(modelConfig(o), { seed: 1, std: 0.02 });
    const params = [...new Set(model.namedParameters().map(([, t]) => t))].reduce((a, t) => a + t.size, 0);
    await saveModel(model, dir, { force: true });
    const self = fileURLToPath(import.meta.url);
    const run = (variant: 'float' | 'nf4'): QloraVariantResult => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', JSON.stringify({ variant, dir, o })], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error(`qlora bench (${variant}) failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as QloraVariantResult;
    };
    const float = run('float');
    const nf4 = run('nf4');
    return { config: o, params, float, nf4, speedRatio: nf4.tokensPerS / float.tokensPerS, rssRatio: nf4.peakRssMiB / float.peakRssMiB };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const { variant, dir, o } = JSON.parse(args[1]!) as { variant: 'float' | 'nf4'; dir: string; o: Required<QloraBenchOptions> };
    const r = await runQloraVariant(variant, dir, o);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    const num = (flag: string): number | undefined => {
      const i = args.indexOf(flag);
      return i >= 0 ? Number(args[i + 1]) : undefined;
    };
    const res = await runQloraBench({ steps: num('--steps'), hidden: num('--hidden'), layers: num('--layers'), experts: num('--experts'), intermediate: num('--intermediate') });
    const f = (v: QloraVariantResult): string =>
      `${v.variant.padEnd(5)} ${v.tokensPerS.toFixed(0).padStart(7)} tok/s  ${v.msPerStep.toFixed(0).padStart(6)} ms/step  peak RSS ${v.peakRssMiB.toFixed(0).padStart(5)} MiB  base linears ${(v.baseLinearBytes / 2 ** 20).toFixed(1)} MiB  load ${v.loadSeconds.toFixed(2)} s  loss ${v.firstLoss.toFixed(3)} -> ${v.lastLoss.toFixed(3)} (${v.backend})`;
    console.log(`QLoRA bench: ${(res.params / 1e6).toFixed(1)}M-parameter Mixtral-style model, LoRA r ${res.config.loraR} on q/k/v/o/w1/w2/w3, batch ${res.config.batchSize} x ${res.config.seqLen}`);
    console.log(f(res.float));
    console.log(f(res.nf4));
    console.log(`nf4 / float: speed ${res.speedRatio.toFixed(2)}x, peak RSS ${res.rssRatio.toFixed(2)}x`);
  }
}
