/**
 * Benchmark entry point (benchmarks are not tests: they print figures and write bench/results.json).
 *
 *   npm run bench                         every model config: ms/step, tokens/s, GFLOP/s, % of the
 *                                         measured GEMM peak, ratio to PyTorch, peak RSS (table)
 *   npm run bench -- --json               the same, one JSON object per config per line
 *   npm run bench -- --config tiny-moe,adamoe   a subset;  --no-torch  skip the PyTorch column
 *   npm run bench -- --engine             GEMM GFLOP/s and per-kernel ms on native and js
 *   npm run bench -- --moe-layer          MoE layer fwd+bwd: top-2 vs null experts at load 1.5
 *   npm run bench -- --qlora              QLoRA vs float-base LoRA tokens/s and peak RSS
 *   npm run bench -- --nf4                NF4 grouped GEMM GFLOP/s at the 6.9B checkpoint's expert shapes
 *   npm run bench -- --load-memory        peak RSS of loading a ~500 MB bf16 checkpoint
 *   npm run bench -- --scale [--keep]     the 6.8B OLMoE-shaped bf16 checkpoint on disk (~14 GB):
 *                                         load + NF4 time, peak RSS, QLoRA tokens/s, recipe error time
 *                                         (bench/scale.ts; not in CI)
 *
 * Each model config runs in its own process (peak RSS is per process) and, in the same run, the
 * peer: transformers (+ PEFT) on torch 2.x via bench/hf_ref.py when the venv exists, else the
 * eager script bench/torch_ref.py (bench/model-step.ts says which, per config).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend, Rng } from '../src/tensor/index.js';
import { BENCH_CONFIGS } from './configs.js';
import { runEngineBench } from './engine.js';
import { runLoadMemoryBench } from './load-memory.js';
import type { StepResult } from './model-step.js';
import { runMoeLayerBench } from './moe-layer.js';
import { runNf4GroupedBench } from './nf4-grouped.js';
import { runQloraBench } from './qlora.js';
import { runScaleBench } from './scale.js';
import { mergeResult, RESULTS_PATH } from './results-file.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(name);
const value = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
};

/** GEMM peak measured now, on this machine and backend: the best of a few 1024^3 NN products. */
function gemmPeak(): number {
  const be = getBackend();
  const n = 1024;
  const rng = new Rng(1);
  const a = Float32Array.from({ length: n * n }, () => rng.normal());
  const b = Float32Array.from({ length: n * n }, () => rng.normal());
  const c = new Float32Array(n * n);
  let best = Infinity;
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    be.gemm(false, false, n, n, n, 1, a, b, 0, c);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * n * n * n) / (best / 1000) / 1e9;
}

function runConfig(name: string, noTorch: boolean): StepResult {
  const script = path.join(here, 'model-step.ts');
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, name, ...(noTorch ? ['--no-torch'] : [])], {
    encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as StepResult;
}

function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined ? '-' : v.toFixed(digits);
}

async function modelBench(): Promise<void> {
  const names = value('--config')?.split(',') ?? BENCH_CONFIGS.map((c) => c.name);
  const json = flag('--json');
  const peak = gemmPeak();
  const results: (StepResult & { pct_of_gemm_peak: number; gemm_peak_gflops: number })[] = [];
  if (!json) {
    console.log(`backend ${getBackend().name}, ${getBackend().threads} threads, measured GEMM peak ${peak.toFixed(0)} GFLOP/s (1024^3)`);
    console.log('config          ms/step  tokens/s  GFLOP/s  %peak  torch ms  ratio  load   loss Δrel   peak RSS  act MB');
  }
  for (const name of names) {
    const r = { ...runConfig(name, flag('--no-torch')), gemm_peak_gflops: peak, pct_of_gemm_peak: 0 };
    r.pct_of_gemm_peak = (100 * r.gflops) / peak;
    results.push(r);
    if (json) console.log(JSON.stringify(r));
    else {
      console.log(`${name.padEnd(14)} ${fmt(r.ms_per_step).padStart(8)} ${fmt(r.tokens_per_s, 0).padStart(9)} ${fmt(r.gflops).padStart(8)} ${fmt(r.pct_of_gemm_peak).padStart(5)}% ${fmt(r.torch_ms_per_step).padStart(9)} ${fmt(r.ratio, 2).padStart(6)} ${fmt(r.load, 2).padStart(5)} ${r.loss_rel_diff === null ? '        -' : r.loss_rel_diff.toExponential(1).padStart(9)} ${fmt(r.peak_rss_mb, 0).padStart(8)}MB ${fmt(r.activation_mb, 0).padStart(6)}`);
      if (r.torch_note) console.log(`  (${r.torch_note})`);
      if (r.peer) console.log(`  (peer: ${r.peer})`);
    }
  }
  const byName = Object.fromEntries(results.map((r) => [r.name, r]));
  const lora = byName['lora'];
  const qlora = byName['qlora'];
  const summary = {
    date: new Date().toISOString(),
    gemm_peak_gflops: peak,
    configs: byName,
    qlora_vs_lora_step: lora && qlora ? qlora.ms_per_step / lora.ms_per_step : null,
  };
  mergeResult('models', summary);
  if (!json) {
    if (summary.qlora_vs_lora_step !== null) console.log(`QLoRA step / float-base LoRA step: ${summary.qlora_vs_lora_step.toFixed(2)}x`);
    console.log(`wrote ${RESULTS_PATH} (key "models")`);
  }
}

if (flag('--moe-layer')) {
  const r = runMoeLayerBench();
  mergeResult('moe_layer', { date: new Date().toISOString(), ...r });
  console.log(JSON.stringify(r, null, 2));
} else if (flag('--engine')) {
  const result = await runEngineBench({ backends: ['native', 'js'] });
  mergeResult('engine', { date: new Date().toISOString(), ...result });
  console.log(`wrote ${RESULTS_PATH} (key "engine")`);
} else if (flag('--nf4')) {
  const rows = runNf4GroupedBench();
  mergeResult('nf4_grouped', { date: new Date().toISOString(), rows });
  console.log(`wrote ${RESULTS_PATH} (key "nf4_grouped")`);
} else if (flag('--qlora')) {
  const r = await runQloraBench();
  mergeResult('qlora', { date: new Date().toISOString(), ...r });
  console.log(JSON.stringify(r, null, 2));
} else if (flag('--scale')) {
  const r = await runScaleBench({ dir: value('--dir'), keep: flag('--keep'), ...(value('--steps') ? { steps: Number(value('--steps')) } : {}), ...(value('--only') ? { only: value('--only')!.split(',') } : {}) });
  mergeResult('scale', { date: new Date().toISOString(), ...r });
  console.log(JSON.stringify(r, null, 2));
} else if (flag('--load-memory')) {
  const r = await runLoadMemoryBench();
  mergeResult('load_memory', { date: new Date().toISOString(), ...r });
  console.log(JSON.stringify(r, null, 2));
} else {
  await modelBench();
}
