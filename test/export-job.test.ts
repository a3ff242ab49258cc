/**
 * `moe-tune export-job` / `import-job` (issue 16): a recipe as a PyTorch job and back.
 *
 * Without Python: the job directory alone (model/, adapter/, data/, job.json) reproduces `moe-tune train`. A
 * Trainer built only from the job's files (the model and PEFT adapter loaded back, batches read from data/ in the
 * stored order, the settings of job.json) gives the same 12 steps of metrics bit for bit as `train` on the recipe;
 * the binary files match their index (shapes, sha256); bad settings fail with one clear line.
 *
 * With Python (.venv-py): train.py of the exported job, run by torch.distributed with 2 CPU processes (gloo),
 * against moe-tune on the same recipe (see the second describe block).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importPeftAdapter } from '../src/convert/index.js';
import { SafetensorsFile } from '../src/io/index.js';
import { loadModel } from '../src/models/load.js';
import { exportJob, loadRecipe, runFinetuneRecipe, type JobSpec } from '../src/recipes/index.js';
import { auxLossOf } from '../src/recipes/compile.js';
import type { TrainBatch, TrainBatchSource } from '../src/train/data-source.js';
import { readMetrics, type StepMetrics } from '../src/train/metrics.js';
import { Trainer } from '../src/train/trainer.js';
import { expectOneErrorLine, runCli } from './helpers/cli.js';
import { python5, runPython } from './helpers/python.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'recipes');
const NULL_EXPERTS = path.join(FIXTURES, 'job-null-experts.yaml');

interface Index {
  seq_len: number;
  batch_size: number;
  grad_accum: number;
  steps: number;
  arrays: Record<string, { file: string; dtype: string; shape: number[]; sha256: string }>;
}

function readArray(dataDir: string, index: Index, name: string): Int32Array {
  const e = index.arrays[name]!;
  const buf = fs.readFileSync(path.join(dataDir, e.file));
  expect(createHash('sha256').update(buf).digest('hex'), `${name} sha256`).toBe(e.sha256);
  expect(buf.byteLength).toBe(4 * e.shape.reduce((a, b) => a * b, 1));
  return new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/** The job's micro-batches in its stored order, as a trainer batch source (no moe-tune data code involved). */
function jobBatchSource(jobDir: string): TrainBatchSource {
  const dataDir = path.join(jobDir, 'data');
  const index = JSON.parse(fs.readFileSync(path.join(dataDir, 'index.json'), 'utf8')) as Index;
  const ids = readArray(dataDir, index, 'train_input_ids');
  const labels = readArray(dataDir, index, 'train_labels');
  const order = readArray(dataDir, index, 'train_order');
  const { seq_len: T, batch_size: B } = index;
  let next = 0;
  return {
    batchesPerEpoch: (JSON.parse(fs.readFileSync(path.join(dataDir, 'index.json'), 'utf8')) as { batches_per_epoch: number }).batches_per_epoch,
    next(): TrainBatch {
      const rows = order.subarray(next * B, (next + 1) * B);
      next++;
      const inputIds = new Int32Array(B * T);
      const lab = new Int32Array(B * T);
      rows.forEach((s, r) => {
        inputIds.set(ids.subarray(s * T, (s + 1) * T), r * T);
        lab.set(labels.subarray(s * T, (s + 1) * T), r * T);
      });
      return { batchSize: B, seqLen: T, inputIds, labels: lab };
    },
    state: () => ({ next }),
    restore: (s) => { next = (s as { next: number }).next; },
  };
}

describe('export-job: the job directory reproduces moe-tune train', () => {
  it('a Trainer fed only from the job files gives the same 12 steps as train, bit for bit', async () => {
    const tmp = makeTmpDir('export-job');
    const resolved = loadRecipe(NULL_EXPERTS, { sets: ['train.steps=12'] });
    const run = await runFinetuneRecipe(resolved, { runDir: path.join(tmp, 'run') });
    const jobDir = path.join(tmp, 'job');
    const res = await exportJob(resolved, { jobDir, processes: 2 });
    expect(res.steps).toBe(12);
    for (const f of ['train.py', 'launch.sh', 'README.md', 'requirements.txt', 'slurm.sbatch', 'accelerate/fsdp.yaml', 'job.json', 'recipe.yaml', 'model/config.json', 'adapter/adapter_config.json', 'data/index.json', 'data/eval.jsonl']) {
      expect(fs.existsSync(path.join(jobDir, f)), f).toBe(true);
    }
    expect(fs.readFileSync(path.join(jobDir, 'launch.sh'), 'utf8')).toMatch(/^NPROC=\$\{NPROC:-2\}$/m);
    const job = JSON.parse(fs.readFileSync(path.join(jobDir, 'job.json'), 'utf8')) as JobSpec;
    expect(job.trainer).toMatchObject({ steps: 12, grad_accum: 2, batch_size: 2, warmup_steps: 3, beta2: 0.95, weight_decay: 0.1, clip_grad_norm: 1 });
    expect(job.trainable.length).toBe(64); // lora_A / lora_B of q, v, gate, gate2 and 3 x 4 experts, 2 layers
    expect(job.no_decay).toEqual([]);

    // the model and adapter come back through the public loaders; the data through the files alone
    const { model } = loadModel(path.join(jobDir, 'model'));
    importPeftAdapter(model, path.join(jobDir, 'adapter'));
    const t = job.trainer;
    const trainer = new Trainer({
      model,
      runDir: path.join(tmp, 'from-job'),
      train: jobBatchSource(jobDir),
      auxLosses: resolved.recipe.aux_losses.map(auxLossOf),
      config: {
        steps: t.steps, gradAccumSteps: t.grad_accum, lr: t.lr, warmupSteps: t.warmup_steps, minLrRatio: t.min_lr_ratio, beta1: t.beta1, beta2: t.beta2,
        eps: t.eps, weightDecay: t.weight_decay, clipGradNorm: t.clip_grad_norm, seed: t.seed, stepsPerEpoch: t.steps_per_epoch, trainable: ['current'],
      },
    });
    expect([...trainer.params.keys()]).toEqual(job.trainable);
    await trainer.run();
    const a = readMetrics(run.seeds[0]!.metricsPath);
    const b = readMetrics(path.join(tmp, 'from-job', 'metrics.jsonl'));
    expect(b.length).toBe(12);
    const keys = ['loss', 'lm_loss', 'balance', 'entropy', 'entropy_weight', 'lr', 'grad_norm', 'load', 'targets'] as const;
    for (let i = 0; i < 12; i++) {
      for (const k of keys) expect(b[i]![k], `step ${i + 1} ${k}`).toBe(a[i]![k]);
      expect(b[i]!.tokens_per_expert).toEqual(a[i]!.tokens_per_expert);
    }
    // the held-out sequences for `moe-tune eval` are the ones the job scores (eval.max_batches 2 x batch 4)
    const lines = fs.readFileSync(path.join(jobDir, 'data', 'eval.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBe(8);
    expect((JSON.parse(lines[0]!) as { input_ids: number[] }).input_ids.length).toBe(17);
  }, 120_000);

  it('refuses settings the job cannot run, with one line', async () => {
    const tmp = makeTmpDir('export-job-bad');
    const resolved = loadRecipe(NULL_EXPERTS, { sets: ['train.steps=2'] });
    await expect(exportJob(resolved, { jobDir: path.join(tmp, 'a'), processes: 4 }))
      .rejects.toThrow(/^train.grad_accum 2 is not a multiple of --processes 4: /);
    const q = loadRecipe(NULL_EXPERTS, { sets: ['train.steps=2', 'quantization.method=nf4'] });
    await expect(exportJob(q, { jobDir: path.join(tmp, 'b') })).rejects.toThrow(/quantization.method is nf4; .* pass --set quantization.method=none/);
    expect(fs.existsSync(path.join(tmp, 'a'))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'b'))).toBe(false);
    // the CLI: one line each
    const bad = runCli(['export-job', '--recipe', NULL_EXPERTS, '--out', path.join(tmp, 'c'), '--processes', '3']);
    expect(expectOneErrorLine(bad)).toMatch(/^moe-tune: train.grad_accum 2 is not a multiple of --processes 3/);
    fs.mkdirSync(path.join(tmp, 'job', 'out'), { recursive: true });
    const none = runCli(['import-job', path.join(tmp, 'job', 'out'), '--out', path.join(tmp, 'run')]);
    expect(expectOneErrorLine(none)).toMatch(/no job.json here or in the parent directory/);
    fs.writeFileSync(path.join(tmp, 'job', 'job.json'), JSON.stringify({ format: 'moe-tune-job', trainable: [] }));
    fs.mkdirSync(path.join(tmp, 'job', 'out', 'checkpoints', 'step-000004'), { recursive: true });
    const unfinished = runCli(['import-job', path.join(tmp, 'job', 'out'), '--out', path.join(tmp, 'run')]);
    expect(expectOneErrorLine(unfinished)).toMatch(/trainable.safetensors: not found: the job has not finished \(newest checkpoint step-000004; run train.py again to continue\)/);
    expect(fs.existsSync(path.join(tmp, 'run'))).toBe(false);
  });

  it('--model wins: the job records the model actually used as base_model in its recipe.yaml', () => {
    const tmp = makeTmpDir('export-job-provenance');
    const ref = path.join(FIXTURES, '..', 'reference');
    const model = path.join(ref, 'tiny-mixtral');
    const r = runCli(['export-job', '--recipe', NULL_EXPERTS, '--model', model, '--data', path.join(ref, 'ids.jsonl'), '--set', 'train.steps=2', '--out', path.join(tmp, 'job')]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'job', 'recipe.yaml'), 'utf8')).toMatch(new RegExp(`^base_model: ${model.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// train.py on torch.distributed (2 CPU processes, gloo) against moe-tune

const py = python5('export-job: train.py on torch.distributed');
if (!py.available) console.log(py.skipLine);

/** Runs the job's train.py on `procs` CPU processes (torchrun, gloo); returns the wall time in seconds. */
/** Runs the job's train.py (under torch.distributed.run for procs > 1): wall seconds and stdout. */
async function runJob(jobDir: string, procs: number, args: string[] = []): Promise<{ wall: number; stdout: string }> {
  const t0 = performance.now();
  const launcher = procs > 1 ? ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', String(procs)] : [];
  const { stdout } = await runPython(py, [...launcher, path.join(jobDir, 'train.py'), ...args], { cwd: jobDir, timeoutMs: 400_000, env: { OMP_NUM_THREADS: '1' } });
  return { wall: (performance.now() - t0) / 1000, stdout };
}

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(a), 1e-30);

/** Per-step comparison of two metrics files; returns the largest relative loss difference. */
function compareRuns(ref: StepMetrics[], job: StepMetrics[], what: string, lossTol: number): number {
  expect(job.length, `${what}: steps`).toBe(ref.length);
  let worst = 0;
  ref.forEach((a, i) => {
    const b = job[i]!;
    const r = rel(a.loss, b.loss);
    worst = Math.max(worst, r);
    expect(r, `${what}: step ${a.step} loss ${a.loss} vs ${b.loss}`).toBeLessThanOrEqual(lossTol);
    expect(rel(a.lr, b.lr), `${what}: step ${a.step} lr`).toBeLessThanOrEqual(1e-12);
    expect(rel(a.grad_norm, b.grad_norm), `${what}: step ${a.step} grad_norm`).toBeLessThanOrEqual(1e-4);
    expect(rel(a.clip_scale, b.clip_scale), `${what}: step ${a.step} clip_scale`).toBeLessThanOrEqual(1e-4);
    expect(b.tokens_per_expert, `${what}: step ${a.step} routing`).toEqual(a.tokens_per_expert);
    expect(b.targets).toBe(a.targets);
  });
  return worst;
}

function lossTable(ref: StepMetrics[], job: StepMetrics[]): string {
  const rows = [...ref.slice(0, 5), ...ref.slice(-5)].map((a) => {
    const b = job[a.step - 1]!;
    return `${String(a.step).padStart(4)}  ${a.loss.toFixed(8)}  ${b.loss.toFixed(8)}  ${rel(a.loss, b.loss).toExponential(2)}`;
  });
  return ['step  moe-tune      job           rel. diff', ...rows].join('\n');
}

describe.skipIf(!py.available)('export-job: train.py with 2 CPU processes (gloo) reproduces moe-tune train', () => {
  it('null experts, LoRA, balance + entropy: 20 steps; 1 process (stopped at 10 and resumed) = 2 processes; import-job + eval', async () => {
    const tmp = makeTmpDir('export-job-py');
    const resolved = loadRecipe(NULL_EXPERTS);
    const run = await runFinetuneRecipe(resolved, { runDir: path.join(tmp, 'run') });
    const jobDir = path.join(tmp, 'job');
    await exportJob(resolved, { jobDir, processes: 2 });
    const { wall } = await runJob(jobDir, 2);
    const ref = readMetrics(run.seeds[0]!.metricsPath);
    const job = readMetrics(path.join(jobDir, 'out', 'metrics.jsonl'));
    expect(ref.length).toBe(20);
    // the bounds: first step 1e-4, every step 1%; measured ~1e-7 (float32 in both engines), asserted 1e-5
    expect(rel(ref[0]!.loss, job[0]!.loss)).toBeLessThanOrEqual(1e-4);
    const worst = compareRuns(ref, job, 'moe-tune vs job (2 processes)', 1e-5);
    const evalRef = ref[19]!.eval_loss!;
    const evalJob = job[19]!.eval_loss!;
    expect(rel(evalRef, evalJob)).toBeLessThanOrEqual(1e-5);
    // final weights: every trained tensor; measured max |diff| ~5e-7 (weights up to ~0.2), asserted 5e-6
    const trained = SafetensorsFile.open(path.join(jobDir, 'out', 'final', 'trainable.safetensors'));
    const mt = new Map(loadModel(run.seeds[0]!.modelDir!).model.namedParameters());
    let maxDiff = 0;
    try {
      const names = trained.names();
      expect(names.length).toBe(64);
      for (const n of names) {
        const a = mt.get(n)!.f;
        const b = trained.readFloat32(n);
        for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      }
    } finally {
      trained.close();
    }
    expect(maxDiff).toBeLessThanOrEqual(5e-6);
    console.log(`export-job, 2 CPU processes: train.py wall ${wall.toFixed(1)} s; loss max rel. diff ${worst.toExponential(2)}; final weights max |diff| ${maxDiff.toExponential(2)}; eval ${evalRef} (moe-tune) vs ${evalJob} (job)\n${lossTable(ref, job)}`);

    // 1 process, stopped after step 10 and resumed: the same losses (only the order of the gradient sum differs)
    await runJob(jobDir, 1, ['--out', path.join(jobDir, 'out1'), '--stop-after', '10']);
    expect(readMetrics(path.join(jobDir, 'out1', 'metrics.jsonl')).length).toBe(10);
    await runJob(jobDir, 1, ['--out', path.join(jobDir, 'out1')]);
    const one = readMetrics(path.join(jobDir, 'out1', 'metrics.jsonl'));
    const worst1 = compareRuns(job, one, '2 processes vs 1 process (resumed at 10)', 1e-6);
    console.log(`1 process (resumed at step 10) vs 2 processes: loss max rel. diff ${worst1.toExponential(2)}\n${lossTable(job, one).replace('moe-tune      job     ', '2 processes   1 process')}`);

    // back into moe-tune: the model, its eval loss, the metrics as a run
    const imported = path.join(tmp, 'imported');
    const r = runCli(['import-job', path.join(jobDir, 'out'), '--out', imported, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ev = runCli(['eval', '--model', path.join(imported, 'final', 'model'), '--data', path.join(jobDir, 'data', 'eval.jsonl'), '--json'], { env: { MOE_TUNE_BACKEND: 'native' } });
    expect(ev.code, ev.stderr).toBe(0);
    const nll = (JSON.parse(ev.stdout) as { nll: number; tokens: number }).nll;
    expect(rel(evalJob, nll)).toBeLessThanOrEqual(1e-5);
    expect(readMetrics(path.join(imported, 'metrics.jsonl'))).toEqual(job);
    const rep = runCli(['report', imported]);
    expect(rep.code, rep.stderr).toBe(0);
    console.log(`import-job + moe-tune eval: nll ${nll} vs the job's eval loss ${evalJob} (rel. ${rel(evalJob, nll).toExponential(2)})`);
  }, 900_000);

  it('top-p router, LoRA + norms trained in full, topp-balance + entropy: 10 steps on 2 processes match moe-tune', async () => {
    const tmp = makeTmpDir('export-job-py-topp');
    const resolved = loadRecipe(path.join(FIXTURES, 'job-top-p.yaml'));
    const run = await runFinetuneRecipe(resolved, { runDir: path.join(tmp, 'run') });
    const jobDir = path.join(tmp, 'job');
    await exportJob(resolved, { jobDir, processes: 2 });
    const { stdout } = await runJob(jobDir, 2);
    const ref = readMetrics(run.seeds[0]!.metricsPath);
    const job = readMetrics(path.join(jobDir, 'out', 'metrics.jsonl'));
    const spec = JSON.parse(fs.readFileSync(path.join(jobDir, 'job.json'), 'utf8')) as JobSpec;
    expect(stdout).toContain('activation checkpointing: on (1 module(s)');
    expect(spec.no_decay).toEqual(['model.layers.0.input_layernorm.weight', 'model.layers.0.post_attention_layernorm.weight',
      'model.layers.1.input_layernorm.weight', 'model.layers.1.post_attention_layernorm.weight', 'model.norm.weight']);
    expect(spec.trainer.gradient_checkpointing).toBe(true); // the fixture checkpoints activations on both sides
    compareRuns(ref, job, 'top-p: moe-tune vs job', 1e-5);
    expect(ref.filter((m) => m.clip_scale < 1).length, 'steps clipped').toBeGreaterThanOrEqual(2);
    for (let i = 0; i < ref.length; i++) expect(rel(ref[i]!['topp-balance'] as number, job[i]!['topp-balance'] as number), `step ${i + 1} topp-balance`).toBeLessThanOrEqual(1e-5);
    expect(rel(ref[9]!.eval_loss!, job[9]!.eval_loss!)).toBeLessThanOrEqual(1e-5);
  }, 600_000);

  it('a shipped recipe: AdaMoE Mo-LoRA m5k2 (tiny; Mo-LoRA experts with null experts, no PEFT adapter) for 4 steps', async () => {
    const tmp = makeTmpDir('export-job-py-molora');
    const resolved = loadRecipe('adamoe-llama2-m5k2', { tiny: true, sets: ['train.steps=4', 'train.epochs=null', 'train.grad_accum=2', 'train.batch_size=2', 'eval.max_batches=1', 'train.gradient_checkpointing=true'] });
    const run = await runFinetuneRecipe(resolved, { runDir: path.join(tmp, 'run') });
    const jobDir = path.join(tmp, 'job');
    await exportJob(resolved, { jobDir, processes: 2 });
    expect(fs.existsSync(path.join(jobDir, 'adapter'))).toBe(false);
    await runJob(jobDir, 2);
    compareRuns(readMetrics(run.seeds[0]!.metricsPath), readMetrics(path.join(jobDir, 'out', 'metrics.jsonl')), 'Mo-LoRA: moe-tune vs job', 1e-5);
  }, 600_000);
});
