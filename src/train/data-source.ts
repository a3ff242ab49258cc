/**
 * What the trainer reads: batches of token ids with their (already shifted) labels, from a source
 * whose position can be saved and restored, so a resumed run sees exactly the batches it would
 * have seen. `packedBatchSource` adapts the data layer's BatchIterator over packed sequences.
 */
import { BatchIterator, type BatchIteratorState } from '../data/batch-iterator.js';
import type { PackedSequences } from '../data/packing.js';

export interface TrainBatch {
  batchSize: number;
  seqLen: number;
  /** batchSize * seqLen ids, row-major. */
  inputIds: Int32Array;
  /** batchSize * seqLen targets: labels[t] is the id to predict at position t, or -100. */
  labels: Int32Array;
  /** Which packed sequences the rows are (sources over packed data; export-job records the order). */
  sequenceIndices?: Int32Array;
}

export interface TrainBatchSource {
  next(): TrainBatch;
  /** The position of the next batch (plain JSON). */
  state(): unknown;
  restore(state: unknown): void;
  /** Batches in one pass over the data (per-epoch schedules), or null when unknown. */
  readonly batchesPerEpoch: number | null;
}

export interface PackedSourceOptions {
  batchSize: number;
  /** Data-order seed (default 0). */
  seed?: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
}

export function packedBatchSource(packed: PackedSequences, opts: PackedSourceOptions): TrainBatchSource {
  const it = new BatchIterator(packed, { batchSize: opts.batchSize, seed: opts.seed ?? 0, shuffle: opts.shuffle ?? true });
  return {
    batchesPerEpoch: it.batchesPerEpoch,
    next: () => it.next().value,
    state: () => it.state(),
    restore: (s) => it.restore(s as BatchIteratorState),
  };
}

/** Target positions (label != -100) of a batch. */
export function countTargets(labels: Int32Array, ignoreIndex = -100): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== ignoreIndex) n++;
  return n;
}
