/**
 * The data of an exported job (JOB/data): the packed sequences and the order in which moe-tune's
 * trainer would feed them, so a PyTorch loop sees exactly the batches `moe-tune train` sees.
 *
 * The order is not re-implemented: it is read off the trainer's own batch source
 * (packedBatchSource, the one BatchIterator), drawing steps x grad_accum micro-batches as
 * Trainer.trainStep does and recording which packed sequences each row is.
 *
 * Format (little-endian, row-major, no header; described by index.json):
 *   train-input-ids.bin  int32 [count, seq_len]           packed input ids
 *   train-labels.bin     int32 [count, seq_len]           shifted labels, -100 = not a target (the loss mask)
 *   train-order.bin      int32 [steps, grad_accum, batch] packed-sequence index of every row of every micro-batch
 *   eval-input-ids.bin, eval-labels.bin                    the held-out set, evaluated in file order
 *   eval.jsonl           {"input_ids": [...seq_len + 1]} per held-out sequence the job scores (eval_max_batches x
 *                        eval_batch_size), for `moe-tune eval`, when every label is a target
 * index.json: {format, version, seq_len, batch_size, grad_accum, steps, seed, batches_per_epoch,
 * ignore_index, eval_batch_size, eval_max_batches, arrays: {name: {file, dtype, shape, sha256}}}.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { IGNORE_INDEX } from '../data/documents.js';
import type { PackedSequences } from '../data/packing.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import { packedBatchSource } from '../train/data-source.js';

export const JOB_DATA_FORMAT = 'moe-tune-job-data';
export const JOB_DATA_VERSION = 1;

export interface JobArray {
  file: string;
  dtype: 'int32';
  shape: number[];
  sha256: string;
}

export interface JobDataIndex {
  format: typeof JOB_DATA_FORMAT;
  version: number;
  seq_len: number;
  batch_size: number;
  grad_accum: number;
  steps: number;
  seed: number;
  /** Micro-batches in one pass over the training sequences (the trainer's epoch). */
  batches_per_epoch: number;
  ignore_index: number;
  eval_batch_size: number;
  eval_max_batches: number | null;
  /** Why there is no eval.jsonl (null when there is one, or no held-out set). */
  eval_jsonl_missing: string | null;
  arrays: Record<string, JobArray>;
}

export interface JobDataOptions {
  train: PackedSequences;
  eval: PackedSequences | null;
  batchSize: number;
  gradAccum: number;
  steps: number;
  /** Data-order seed (the trainer's dataSeed). */
  seed: number;
  evalBatchSize: number;
  evalMaxBatches: number | null;
}

function bytesOf(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Writes one int32 array atomically; returns its index entry. */
function writeArray(dir: string, file: string, data: Int32Array, shape: number[]): JobArray {
  const bytes = bytesOf(data);
  writeFileAtomic(path.join(dir, file), bytes);
  return { file, dtype: 'int32', shape, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The micro-batch order of a whole run: [steps * gradAccum * batchSize] packed-sequence indices. */
export function trainOrder(train: PackedSequences, o: { batchSize: number; gradAccum: number; steps: number; seed: number }): Int32Array {
  const src = packedBatchSource(train, { batchSize: o.batchSize, seed: o.seed });
  const order = new Int32Array(o.steps * o.gradAccum * o.batchSize);
  for (let i = 0; i < o.steps * o.gradAccum; i++) {
    const b = src.next();
    if (!b.sequenceIndices) throw new Error('job data: the batch source does not report sequence indices');
    order.set(b.sequenceIndices, i * o.batchSize);
  }
  return order;
}

/**
 * The held-out sequences the job evaluates (the first `count`) as `moe-tune eval` reads them (seq_len + 1 ids each:
 * the inputs and the last label), so its NLL is the job's eval loss; or why not.
 */
function evalJsonl(ev: PackedSequences, count: number): { text: string | null; why: string | null } {
  const T = ev.seqLen;
  const lines: string[] = [];
  for (let k = 0; k < count; k++) {
    const labels = ev.labels.subarray(k * T, (k + 1) * T);
    const ids = ev.inputIds.subarray(k * T, (k + 1) * T);
    for (let t = 0; t < T; t++) {
      if (labels[t] === IGNORE_INDEX) return { text: null, why: `held-out sequence ${k} has masked targets (position ${t}); moe-tune eval scores every token` };
      if (t + 1 < T && labels[t] !== ids[t + 1]) return { text: null, why: `held-out sequence ${k}: label ${t} is not the next input id` };
    }
    lines.push(JSON.stringify({ input_ids: [...ids, labels[T - 1]!] }));
  }
  return { text: `${lines.join('\n')}\n`, why: null };
}

/** Writes JOB/data (dir) and returns its index. */
export function writeJobData(dir: string, o: JobDataOptions): JobDataIndex {
  const T = o.train.seqLen;
  const arrays: Record<string, JobArray> = {};
  arrays['train_input_ids'] = writeArray(dir, 'train-input-ids.bin', o.train.inputIds, [o.train.count, T]);
  arrays['train_labels'] = writeArray(dir, 'train-labels.bin', o.train.labels, [o.train.count, T]);
  arrays['train_order'] = writeArray(dir, 'train-order.bin', trainOrder(o.train, o), [o.steps, o.gradAccum, o.batchSize]);
  let why: string | null = null;
  if (o.eval && o.eval.count > 0) {
    arrays['eval_input_ids'] = writeArray(dir, 'eval-input-ids.bin', o.eval.inputIds, [o.eval.count, T]);
    arrays['eval_labels'] = writeArray(dir, 'eval-labels.bin', o.eval.labels, [o.eval.count, T]);
    const scored = o.evalMaxBatches === null ? o.eval.count : Math.min(o.eval.count, o.evalMaxBatches * o.evalBatchSize);
    const j = evalJsonl(o.eval, scored);
    if (j.text !== null) writeFileAtomic(path.join(dir, 'eval.jsonl'), j.text);
    why = j.why;
  }
  const index: JobDataIndex = {
    format: JOB_DATA_FORMAT,
    version: JOB_DATA_VERSION,
    seq_len: T,
    batch_size: o.batchSize,
    grad_accum: o.gradAccum,
    steps: o.steps,
    seed: o.seed,
    batches_per_epoch: Math.floor(o.train.count / o.batchSize),
    ignore_index: IGNORE_INDEX,
    eval_batch_size: o.evalBatchSize,
    eval_max_batches: o.evalMaxBatches,
    eval_jsonl_missing: why,
    arrays,
  };
  writeJsonAtomic(path.join(dir, 'index.json'), index);
  return index;
}
