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
import { loadModel } from '../src/models/load.js';
import { exportJob, loadRecipe, runFinetuneRecipe, type JobSpec } from '../src/recipes/index.js';
import { auxLossOf } from '../src/recipes/compile.js';
import type { TrainBatch, TrainBatchSource } from '../src/train/data-source.js';
import { readMetrics } from '../src/train/metrics.js';
import { Trainer } from '../src/train/trainer.js';
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
  });
});
