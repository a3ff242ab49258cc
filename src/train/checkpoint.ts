/**
 * Training checkpoints: everything a run needs to continue exactly where it stopped.
 *
 * Layout: RUN_DIR/checkpoints/step-000120/ with
 *   trainer-state.json     {format, version, step, content, params: [names], optimizer: {step, steps},
 *                           data (the batch source's position), rng (RNG stream states), lr,
 *                           config (the resolved trainer config), extra (the caller's resolved recipe)}
 *   params.safetensors     the model's parameters: all of them (content 'full') or only the
 *                          trainable ones ('trainable': LoRA / routers; the frozen base is re-read)
 *   optimizer.safetensors  AdamW moments per trainable parameter: `exp_avg.<name>`, `exp_avg_sq.<name>`
 *
 * A checkpoint directory is built under a hidden temp name, its files and the directory fsynced, and
 * renamed into place (withAtomicDir), so `step-*` directories are always complete; one that is not
 * (copied partially, written by an older version) is skipped by `listCheckpoints` and reported by
 * `incompleteCheckpoints`; trainer-state.json is validated (trainer-state-schema.ts); leftovers of a killed write (`.step-*.tmp-*`) are
 * removed when the run resumes. After a successful write only the newest `keep` are kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeQuietly, SafetensorsFile, tempSiblingPath, withAtomicDir, writeJsonAtomic, writeSafetensors, type TensorToWrite } from '../io/index.js';
import type { AdamWState } from './adamw.js';
import type { RngState, Tensor } from '../tensor/index.js';
import { parseTrainerState } from './trainer-state-schema.js';

export const TRAINER_STATE_FILE = 'trainer-state.json';
export const PARAMS_FILE = 'params.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FORMAT = 'moe-tune-trainer-state';
const STATE_VERSION = 1;
const STEP_DIR = /^step-(\d+)$/;

export type CheckpointContent = 'full' | 'trainable';

export interface TrainerStateJson {
  format: typeof STATE_FORMAT;
  version: number;
  /** Optimizer steps completed. */
  step: number;
  content: CheckpointContent;
  /** Names of the tensors in params.safetensors. */
  params: string[];
  /** Names of the trainable parameters (optimizer.safetensors holds their moments). */
  trainable: string[];
  optimizer: { step: number; steps: Record<string, number> };
  data: unknown;
  rng: Record<string, RngState>;
  /** Random states of routers with their own streams (RandomStateful), in MoE-block order. */
  routers?: unknown[];
  lr: number;
  /** Target tokens seen so far. */
  tokensSeen: number;
  /** Training seconds and input tokens processed so far (tokens/s across resumes). */
  elapsedS?: number;
  tokensProcessed?: number;
  config: unknown;
  extra: unknown;
}

export interface CheckpointToWrite {
  step: number;
  content: CheckpointContent;
  /** The tensors to store in params.safetensors (name -> parameter). */
  params: ReadonlyMap<string, Tensor>;
  trainable: readonly string[];
  optimizer: AdamWState;
  data: unknown;
  rng: Record<string, RngState>;
  routers?: unknown[];
  lr: number;
  tokensSeen: number;
  elapsedS?: number;
  tokensProcessed?: number;
  config: unknown;
  extra?: unknown;
}

export function checkpointsDir(runDir: string): string {
  return path.join(runDir, 'checkpoints');
}

export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function float32Of(name: string, a: ArrayLike<number> & { constructor: unknown }): Float32Array {
  if (a instanceof Float32Array) return a;
  throw new Error(`checkpoint: tensor '${name}' is not float32 (only float32 training state is checkpointed)`);
}

/**
 * Writes a checkpoint atomically. `midWrite` (tests) runs after the parameters are written and
 * before the optimizer state, inside the temp directory.
 */
export async function writeTrainCheckpoint(runDir: string, ck: CheckpointToWrite,
  opts: { keep?: number; midWrite?: (tmpDir: string) => void | Promise<void> } = {}): Promise<string> {
  const dir = path.join(checkpointsDir(runDir), checkpointDirName(ck.step));
  await withAtomicDir(dir, async (tmp) => {
    const params: TensorToWrite[] = [...ck.params].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: float32Of(name, t.f) }));
    writeSafetensors(path.join(tmp, PARAMS_FILE), params, { format: 'pt' });
    if (opts.midWrite) await opts.midWrite(tmp);
    const moments: TensorToWrite[] = [];
    for (const [name, m] of Object.entries(ck.optimizer.m)) moments.push({ name: `exp_avg.${name}`, dtype: 'F32', shape: [m.length], data: float32Of(name, m) });
    for (const [name, v] of Object.entries(ck.optimizer.v)) moments.push({ name: `exp_avg_sq.${name}`, dtype: 'F32', shape: [v.length], data: float32Of(name, v) });
    writeSafetensors(path.join(tmp, OPTIMIZER_FILE), moments, { format: 'pt' });
    const state: TrainerStateJson = {
      format: STATE_FORMAT, version: STATE_VERSION, step: ck.step, content: ck.content, params: [...ck.params.keys()],
      trainable: [...ck.trainable], optimizer: { step: ck.optimizer.step, steps: ck.optimizer.steps }, data: ck.data, rng: ck.rng,
      routers: ck.routers ?? [], lr: ck.lr, tokensSeen: ck.tokensSeen,
      elapsedS: ck.elapsedS ?? 0, tokensProcessed: ck.tokensProcessed ?? 0, config: ck.config, extra: ck.extra ?? null,
    };
    writeJsonAtomic(path.join(tmp, TRAINER_STATE_FILE), state);
  }, { force: true });
  if (opts.keep !== undefined) pruneCheckpoints(runDir, opts.keep);
  return dir;
}

/** The files every complete checkpoint directory holds. */
export const CHECKPOINT_FILES: readonly string[] = [TRAINER_STATE_FILE, PARAMS_FILE, OPTIMIZER_FILE];

/** The files of CHECKPOINT_FILES missing from (or not regular files in) a checkpoint directory. */
export function missingCheckpointFiles(dir: string): string[] {
  return CHECKPOINT_FILES.filter((f) => {
    try {
      return !fs.lstatSync(path.join(dir, f)).isFile();
    } catch {
      return true;
    }
  });
}

function scanCheckpoints(runDir: string): { complete: { step: number; dir: string }[]; incomplete: { step: number; dir: string; missing: string[] }[] } {
  const root = checkpointsDir(runDir);
  const complete: { step: number; dir: string }[] = [];
  const incomplete: { step: number; dir: string; missing: string[] }[] = [];
  if (!fs.existsSync(root)) return { complete, incomplete };
  for (const e of fs.readdirSync(root)) {
    const m = STEP_DIR.exec(e);
    if (!m) continue;
    const dir = path.join(root, e);
    const missing = missingCheckpointFiles(dir);
    if (missing.length === 0) complete.push({ step: Number(m[1]), dir });
    else incomplete.push({ step: Number(m[1]), dir, missing });
  }
  complete.sort((a, b) => a.step - b.step);
  incomplete.sort((a, b) => a.step - b.step);
  return { complete, incomplete };
}

/** Complete checkpoints of a run (all of CHECKPOINT_FILES present), oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  return scanCheckpoints(runDir).complete;
}

/** `step-*` directories that lack some of CHECKPOINT_FILES (written by an older version, or damaged), oldest first. */
export function incompleteCheckpoints(runDir: string): { step: number; dir: string; missing: string[] }[] {
  return scanCheckpoints(runDir).incomplete;
}

export function latestCheckpoint(runDir: string): { step: number; dir: string } | null {
  const all = listCheckpoints(runDir);
  return all.length === 0 ? null : all[all.length - 1]!;
}

/** Removes all but the newest `keep` checkpoints (keep >= 1). */
export function pruneCheckpoints(runDir: string, keep: number): void {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`checkpoints: keep must be a positive integer, got ${keep}`);
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) removeCheckpointDir(c.dir);
  // leftovers of a removal that was killed before this fix renamed first: incomplete and older than what is kept
  const oldest = listCheckpoints(runDir)[0];
  if (oldest) for (const bad of incompleteCheckpoints(runDir)) if (bad.step < oldest.step) removeCheckpointDir(bad.dir);
}

/**
 * Removes a checkpoint directory so that a kill midway never leaves a `step-*` that looks like a damaged checkpoint:
 * it is first renamed to a hidden `.step-*.old-*` name (which resume removes as a leftover), then deleted.
 */
export function removeCheckpointDir(dir: string): void {
  const aside = tempSiblingPath(dir, 'old');
  try {
    fs.renameSync(dir, aside);
  } catch {
    removeQuietly(dir);
    return;
  }
  removeQuietly(aside);
}

/** Removes the temp directories a killed checkpoint write left behind; returns their names. */
export function removeStaleCheckpointTemps(runDir: string): string[] {
  const root = checkpointsDir(runDir);
  if (!fs.existsSync(root)) return [];
  const stale = fs.readdirSync(root).filter((e) => /^\.step-\d+\.(tmp|old)-/.test(e));
  for (const e of stale) removeQuietly(path.join(root, e));
  return stale;
}

export interface LoadedTrainCheckpoint {
  dir: string;
  state: TrainerStateJson;
  params: Map<string, Float32Array>;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

/** Reads a checkpoint directory, with one-line errors naming the file. */
export function readTrainCheckpoint(dir: string): LoadedTrainCheckpoint {
  const statePath = path.join(dir, TRAINER_STATE_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new Error(`${statePath}: cannot read the trainer state (${(e as Error).message})`);
  }
  const r = raw as Partial<TrainerStateJson> | null;
  if (typeof r !== 'object' || r === null || r.format !== STATE_FORMAT || r.version !== STATE_VERSION) {
    throw new Error(`${statePath}: not a moe-tune trainer state (format ${JSON.stringify(r?.format)}, version ${JSON.stringify(r?.version)}); expected format "${STATE_FORMAT}", version ${STATE_VERSION}`);
  }
  const state = parseTrainerState(raw, statePath) as TrainerStateJson;
  const params = new Map<string, Float32Array>();
  const pf = SafetensorsFile.open(path.join(dir, PARAMS_FILE));
  try {
    for (const n of state.params) params.set(n, pf.readFloat32(n));
  } finally {
    pf.close();
  }
  const m: Record<string, Float32Array> = {};
  const v: Record<string, Float32Array> = {};
  const of = SafetensorsFile.open(path.join(dir, OPTIMIZER_FILE));
  try {
    for (const n of of.names()) {
      if (n.startsWith('exp_avg_sq.')) v[n.slice('exp_avg_sq.'.length)] = of.readFloat32(n);
      else if (n.startsWith('exp_avg.')) m[n.slice('exp_avg.'.length)] = of.readFloat32(n);
      else throw new Error(`${of.path}: unexpected tensor '${n}' (expected exp_avg.* and exp_avg_sq.*)`);
    }
  } finally {
    of.close();
  }
  return { dir, state, params, m, v };
}
