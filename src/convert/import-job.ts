/**
 * `moe-tune import-job JOB/out --out RUN`: the result of an exported job (train.py) back as a moe-tune run.
 *
 * The job wrote out/final/trainable.safetensors: every tensor it trained under moe-tune's names (LoRA A / B,
 * and what the recipe trains in full). The model is rebuilt as export-job built it (JOB/model, then LoRA with the
 * options of job.json), the trained tensors replace the starting ones (every name and shape checked first), and
 * RUN gets what `moe-tune train` leaves: final/model (with the tokenizer), metrics.jsonl (the job's, same field
 * names, so `moe-tune report RUN` draws it), eval.json, recipe.yaml / recipe.json, and import.json (provenance).
 * RUN is built under a temporary name and renamed into place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonObject, SafetensorsFile, withAtomicDir, writeJsonAtomic } from '../io/index.js';
import { applyLora, type LoraOptions } from '../lora/index.js';
import { loadModel } from '../models/load.js';
import { saveModel } from '../models/save.js';
import { shapeStr } from '../tensor/index.js';

export interface ImportJobOptions {
  force?: boolean;
  log?: (line: string) => void;
}

export interface ImportJobResult {
  runDir: string;
  modelDir: string;
  metricsPath: string;
  steps: number;
  tensors: number;
  evalAfter: number | null;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

/** JOB/out (or JOB) -> the job directory and its output directory. */
function locate(dir: string): { jobDir: string; outDir: string } {
  if (!fs.existsSync(dir)) throw new Error(`${dir}: not found (expected the out/ directory of an exported job)`);
  if (fs.existsSync(path.join(dir, 'job.json'))) return { jobDir: dir, outDir: path.join(dir, 'out') };
  const parent = path.dirname(path.resolve(dir));
  if (fs.existsSync(path.join(parent, 'job.json'))) return { jobDir: parent, outDir: dir };
  throw new Error(`${dir}: no job.json here or in the parent directory (expected JOB/out of a job written by moe-tune export-job)`);
}

export async function importJob(dir: string, runDir: string, opts: ImportJobOptions = {}): Promise<ImportJobResult> {
  const log = opts.log ?? (() => {});
  const { jobDir, outDir } = locate(dir);
  const jobPath = path.join(jobDir, 'job.json');
  const job = readJsonObject(jobPath);
  if (job['format'] !== 'moe-tune-job') throw new Error(`${jobPath}: format is ${JSON.stringify(job['format'])}, expected "moe-tune-job"`);
  const finalDir = path.join(outDir, 'final');
  const weights = path.join(finalDir, 'trainable.safetensors');
  if (!fs.existsSync(weights)) {
    const ck = path.join(outDir, 'checkpoints');
    const newest = fs.existsSync(ck) ? fs.readdirSync(ck).filter((n) => /^step-\d+$/.test(n)).sort().pop() : undefined;
    throw new Error(`${weights}: not found: the job has not finished${newest ? ` (newest checkpoint ${newest}; run train.py again to continue)` : ''}`);
  }
  const trainable = job['trainable'];
  if (!Array.isArray(trainable) || trainable.some((n) => typeof n !== 'string')) throw new Error(`${jobPath}: "trainable" must be a list of parameter names`);
  const modelSrc = path.join(jobDir, String(job['model'] ?? 'model'));
  log(`loading ${modelSrc}`);
  const { model } = loadModel(modelSrc);
  const lora = job['lora'] as Record<string, unknown> | null;
  if (lora) applyLora(model, { ...(lora as unknown as LoraOptions), seed: 0 });
  const params = new Map(model.namedParameters());
  const file = SafetensorsFile.open(weights);
  let tensors = 0;
  try {
    const names = file.names();
    const want = new Set(trainable as string[]);
    for (const n of names) {
      if (!want.has(n)) throw new Error(`${weights}: tensor '${n}' is not one of the job's trainable parameters (${jobPath})`);
      const t = params.get(n);
      if (!t) throw new Error(`${weights}: tensor '${n}' is not in the model rebuilt from ${modelSrc}`);
      const shape = file.info(n).shape;
      if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`${weights}: tensor '${n}' has shape ${shapeStr(shape)}, the model's is ${shapeStr(t.shape)}`);
      }
    }
    const missing = [...want].filter((n) => !names.includes(n));
    if (missing.length > 0) throw new Error(`${weights}: missing trained tensor '${missing[0]}' (${missing.length} of ${want.size} missing)`);
    for (const n of names) {
      (params.get(n)!.f as Float32Array).set(file.readFloat32(n));
      tensors++;
    }
  } finally {
    file.close();
  }
  const metricsSrc = path.join(outDir, 'metrics.jsonl');
  if (!fs.existsSync(metricsSrc)) throw new Error(`${metricsSrc}: not found (train.py writes it as it trains)`);
  const evalSrc = path.join(outDir, 'eval.json');
  const evalJson = fs.existsSync(evalSrc) ? readJsonObject(evalSrc) : null;
  const trainedJson = readJsonObject(path.join(finalDir, 'trainable.json'));
  const modelDir = path.join(runDir, 'final', 'model');
  await withAtomicDir(runDir, async (tmp) => {
    const tmpModel = path.join(tmp, 'final', 'model');
    fs.mkdirSync(path.dirname(tmpModel), { recursive: true });
    await saveModel(model, tmpModel);
    for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(modelSrc, f))) fs.copyFileSync(path.join(modelSrc, f), path.join(tmpModel, f));
    fs.copyFileSync(metricsSrc, path.join(tmp, 'metrics.jsonl'));
    if (evalJson) writeJsonAtomic(path.join(tmp, 'eval.json'), evalJson);
    for (const f of ['recipe.yaml', 'recipe.json']) if (fs.existsSync(path.join(jobDir, f))) fs.copyFileSync(path.join(jobDir, f), path.join(tmp, f));
    if (fs.existsSync(path.join(finalDir, 'adapter'))) fs.cpSync(path.join(finalDir, 'adapter'), path.join(tmp, 'final', 'adapter-peft'), { recursive: true });
    writeJsonAtomic(path.join(tmp, 'import.json'), {
      job: path.resolve(jobDir), out: path.resolve(outDir), recipe: job['recipe'], seed: job['seed'], steps: trainedJson['step'],
      processes: trainedJson['processes'] ?? null, tensors,
    });
  }, { force: opts.force });
  const after = (evalJson?.['after'] as { loss?: number } | null | undefined)?.loss ?? null;
  return { runDir, modelDir, metricsPath: path.join(runDir, 'metrics.jsonl'), steps: Number(trainedJson['step']), tensors, evalAfter: after };
}
