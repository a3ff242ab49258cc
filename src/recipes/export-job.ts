/**
 * `moe-tune export-job`: a fine-tuning recipe as a self-contained PyTorch job directory, for a machine with GPUs
 * and torch.distributed (accelerate / torchrun), whose result `moe-tune import-job` brings back.
 *
 * Everything the job needs is resolved here by moe-tune's own code, so both engines train the same thing:
 *   model/     the base after the recipe's surgery passes and router (moe-tune's model directory; transformers
 *              loads it with trust_remote_code), with its tokenizer
 *   adapter/   the recipe's LoRA at moe-tune's seeded initialisation, as a PEFT adapter on model/
 *   data/      the packed sequences and the trainer's batch order (src/convert/job-data.ts)
 *   job.json   the trainer settings as the Trainer resolved them (steps, warmup steps, steps per epoch, AdamW,
 *              clipping), the trainable and no-decay parameters by name, the aux losses with their schedules
 *   train.py, launch.sh, requirements.txt, README.md, accelerate/   (python/moe_tune_job, copied)
 *   recipe.yaml / recipe.json, source/ (the tokenizer and samples a tiny recipe makes)
 * The directory is built under a temporary name and renamed into place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportPeftAdapter } from '../convert/peft-adapter.js';
import { writeJobData, type JobDataIndex } from '../convert/job-data.js';
import { withAtomicDir, writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import { saveModel } from '../models/save.js';
import { packedBatchSource } from '../train/data-source.js';
import { Trainer } from '../train/trainer.js';
import { buildFinetuneModel, prepareFinetune, type FinetuneSetupOptions } from './finetune-setup.js';
import type { ResolvedRecipe } from './load-recipe.js';
import { stepsOf, trainerConfigOf } from './trainer-config.js';
import { recipeExtra, writeResolvedRecipe } from './write-recipe.js';

/** The job template shipped with moe-tune (python/moe_tune_job). */
export const JOB_TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../python/moe_tune_job');
export const JOB_FORMAT = 'moe-tune-job';
export const JOB_VERSION = 1;

export interface ExportJobOptions extends Omit<FinetuneSetupOptions, 'runDir'> {
  /** The job directory to write. */
  jobDir: string;
  /** Processes (GPUs) the launch script starts (default 1); grad_accum must be a multiple of it. */
  processes?: number;
  /** Which of the recipe's seeds (default: the first). */
  seed?: number;
  /** Replace an existing non-empty job directory. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface ExportJobResult {
  jobDir: string;
  steps: number;
  seed: number;
  processes: number;
  trainSequences: number;
  evalSequences: number;
  trainable: string[];
  data: JobDataIndex;
  surgeryReport: string[];
}

/** The job settings train.py reads (job.json). */
export interface JobSpec {
  format: typeof JOB_FORMAT;
  version: number;
  recipe: string;
  seed: number;
  processes: number;
  model: string;
  adapter: string | null;
  trainer: {
    steps: number;
    grad_accum: number;
    batch_size: number;
    lr: number;
    warmup_steps: number;
    min_lr_ratio: number;
    beta1: number;
    beta2: number;
    eps: number;
    weight_decay: number;
    clip_grad_norm: number | null;
    seed: number;
    steps_per_epoch: number;
    eval_every: number;
    checkpoint_every: number;
    keep_checkpoints: number;
    /** Recompute each decoder layer in the backward (train.gradient_checkpointing). */
    gradient_checkpointing: boolean;
  };
  trainable: string[];
  no_decay: string[];
  aux_losses: Record<string, unknown>[];
  /** moe-tune's LoRA options (import-job rebuilds the adapted model with them). */
  lora: Record<string, unknown> | null;
  moe_tune_version: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(JOB_TEMPLATE_DIR, '../../package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Copies the job template files (train.py, launch.sh, README.md, requirements.txt, accelerate/) into `dir`. */
function copyTemplate(dir: string, processes: number): void {
  if (!fs.existsSync(path.join(JOB_TEMPLATE_DIR, 'train.py'))) throw new Error(`${JOB_TEMPLATE_DIR}/train.py: the job template is missing from this moe-tune install`);
  for (const e of fs.readdirSync(JOB_TEMPLATE_DIR, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === '__pycache__') continue;
    const from = path.join(JOB_TEMPLATE_DIR, e.name);
    if (e.isDirectory()) fs.cpSync(from, path.join(dir, e.name), { recursive: true, filter: (s) => !s.includes('__pycache__') });
    else if (e.name === 'launch.sh') {
      writeFileAtomic(path.join(dir, e.name), fs.readFileSync(from, 'utf8').replace(/^NPROC=\$\{NPROC:-\d+\}$/m, `NPROC=\${NPROC:-${processes}}`));
      fs.chmodSync(path.join(dir, e.name), 0o755);
    } else fs.copyFileSync(from, path.join(dir, e.name));
  }
}

export async function exportJob(resolved: ResolvedRecipe, o: ExportJobOptions): Promise<ExportJobResult> {
  const r = resolved.recipe;
  const log = o.log ?? (() => {});
  if (r.kind !== 'finetune') throw new Error(`${resolved.file}: kind is ${r.kind}; export-job exports fine-tuning recipes`);
  if (r.quantization.method !== 'none') {
    throw new Error(`${resolved.file}: quantization.method is ${r.quantization.method}; the exported job trains the float base (bf16 on GPUs): pass --set quantization.method=none`);
  }
  const processes = o.processes ?? 1;
  if (!Number.isInteger(processes) || processes < 1) throw new Error(`--processes must be a positive integer, got ${processes}`);
  if (r.train.grad_accum % processes !== 0) {
    throw new Error(`train.grad_accum ${r.train.grad_accum} is not a multiple of --processes ${processes}: each process runs whole micro-batches of train.batch_size ${r.train.batch_size} (so the aux losses see the batches moe-tune sees); set train.grad_accum to a multiple of ${processes}`);
  }
  const seed = o.seed ?? r.seeds[0]!;
  if (!r.seeds.includes(seed)) throw new Error(`--seed ${seed}: the recipe's seeds are ${r.seeds.join(', ')}`);
  let result: ExportJobResult | null = null;
  await withAtomicDir(o.jobDir, async (tmp) => {
    const sourceDir = path.join(tmp, 'source');
    const p = await prepareFinetune(resolved, { runDir: sourceDir, modelDir: o.modelDir, dataFiles: o.dataFiles }, log);
    fs.rmSync(path.join(sourceDir, 'data-cache'), { recursive: true, force: true });
    const steps = stepsOf(r, p.train.count);
    log(`data: ${p.train.count} training sequences of ${r.train.seq_len} tokens${p.eval ? `, ${p.eval.count} held out` : ''}; ${steps} steps of ${r.train.grad_accum} x ${r.train.batch_size} sequences`);
    const modelDir = path.join(tmp, 'model');
    const { model, surgeryReport } = await buildFinetuneModel(resolved, p, seed, log, {
      beforeLora: async (m) => {
        await saveModel(m, modelDir, { alwaysRemoteCode: true });
        p.tok?.save(modelDir);
      },
    });
    let adapter: string | null = null;
    if (model.config.extensions.lora) {
      adapter = 'adapter';
      await exportPeftAdapter(model, path.join(tmp, adapter), { baseModelNameOrPath: 'model', remoteCodeBase: true });
    }
    // the trainer resolves every default (trainable set, no-decay, warmup, steps per epoch) exactly as `train` does
    const trainer = new Trainer({
      model,
      config: { ...trainerConfigOf(r, steps, seed), trainable: r.train.trainable },
      train: packedBatchSource(p.train, { batchSize: r.train.batch_size, seed }),
      auxLosses: resolved.compiled.auxLosses(),
      runDir: path.join(tmp, '.trainer-unused'),
    });
    const cfg = trainer.config;
    const trainable = [...trainer.params.keys()];
    const data = writeJobData(path.join(tmp, 'data'), {
      train: p.train, eval: p.eval, batchSize: r.train.batch_size, gradAccum: cfg.gradAccumSteps, steps, seed,
      evalBatchSize: r.eval.batch_size, evalMaxBatches: r.eval.max_batches,
    });
    const job: JobSpec = {
      format: JOB_FORMAT,
      version: JOB_VERSION,
      recipe: r.name,
      seed,
      processes,
      model: 'model',
      adapter,
      trainer: {
        steps,
        grad_accum: cfg.gradAccumSteps,
        batch_size: r.train.batch_size,
        lr: cfg.lr,
        warmup_steps: trainer.schedule.warmupSteps,
        min_lr_ratio: cfg.minLrRatio,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weightDecay,
        clip_grad_norm: cfg.clipGradNorm,
        seed,
        steps_per_epoch: trainer.stepsPerEpoch,
        eval_every: cfg.evalEvery,
        checkpoint_every: cfg.checkpointEvery,
        keep_checkpoints: cfg.keepCheckpoints,
        gradient_checkpointing: cfg.gradientCheckpointing ?? false,
      },
      trainable,
      no_decay: trainable.filter((n) => !trainer.decays(n)),
      aux_losses: r.aux_losses.map((a) => ({ ...a })),
      lora: (model.config.extensions.lora as Record<string, unknown> | undefined) ?? null,
      moe_tune_version: packageVersion(),
    };
    writeJsonAtomic(path.join(tmp, 'job.json'), job);
    writeResolvedRecipe(tmp, resolved);
    writeJsonAtomic(path.join(tmp, 'recipe-extra.json'), recipeExtra(resolved, { seed }));
    copyTemplate(tmp, processes);
    fs.rmSync(path.join(tmp, '.trainer-unused'), { recursive: true, force: true });
    result = {
      jobDir: o.jobDir, steps, seed, processes, trainSequences: p.train.count, evalSequences: p.eval?.count ?? 0, trainable, data, surgeryReport,
    };
  }, { force: o.force });
  return result!;
}
