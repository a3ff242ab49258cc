/**
 * A deterministic, seedable, resumable batch iterator over packed sequences.
 *
 * Order: epoch e visits the sequences in a permutation drawn from SeededRandom(mix(seed, e))
 * (identity order when `shuffle` is false) and cuts it into batches of `batchSize` sequences;
 * the last partial batch of an epoch is dropped, so every batch has the same shape (a different
 * remainder is dropped each epoch when shuffling). The iterator is endless: after the last batch of
 * epoch e comes the first of epoch e + 1.
 *
 * Position: `state()` returns `{epoch, index, seed}` (plain JSON; index = batches already taken in
 * this epoch). `restore(state)` on an iterator over the same packed data continues with exactly
 * the batches the original would have produced next.
 */
import { mix32, SeededRandom } from './seeded-random.js';
import type { PackedSequences } from './packing.js';

export interface BatchIteratorState {
  epoch: number;
  index: number;
  seed: number;
}

export interface BatchIteratorOptions {
  batchSize: number;
  /** Default 0. */
  seed?: number;
  /** Shuffle each epoch (default true); false keeps the packed order (for evaluation). */
  shuffle?: boolean;
}

export interface Batch {
  batchSize: number;
  seqLen: number;
  /** batchSize * seqLen, row-major. */
  inputIds: Int32Array;
  /** batchSize * seqLen shifted labels (see packing.ts), -100 = ignored. */
  labels: Int32Array;
  /** Which packed sequences the rows are. */
  sequenceIndices: Int32Array;
  /** Position of this batch: its epoch and index within the epoch. */
  epoch: number;
  index: number;
}

export class BatchIterator implements Iterator<Batch>, Iterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  /** Batches per epoch (floor(count / batchSize)). */
  readonly batchesPerEpoch: number;
  private seed: number;
  private epoch = 0;
  private index = 0;
  private order: Int32Array | null = null;
  private orderEpoch = -1;

  constructor(private readonly packed: PackedSequences, opts: BatchIteratorOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`BatchIterator: batchSize must be a positive integer, got ${batchSize}`);
    if (packed.count < batchSize) {
      throw new Error(`BatchIterator: ${packed.count} packed sequences cannot fill one batch of ${batchSize} (use more data, a shorter seqLen or a smaller batch)`);
    }
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.seed = BatchIterator.checkSeed(opts.seed ?? 0);
    this.batchesPerEpoch = Math.floor(packed.count / batchSize);
  }

  private static checkSeed(seed: unknown): number {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`BatchIterator: seed must be an integer in [0, 2^32), got ${String(seed)}`);
    }
    return seed;
  }

  /** The position of the next batch. */
  state(): BatchIteratorState {
    return { epoch: this.epoch, index: this.index, seed: this.seed };
  }

  /** Moves to a position saved by `state()`. */
  restore(state: BatchIteratorState): void {
    const s = state as unknown as Record<string, unknown>;
    if (typeof s !== 'object' || s === null) throw new Error('BatchIterator.restore: state must be {epoch, index, seed}');
    const seed = BatchIterator.checkSeed(s.seed);
    const epoch = s.epoch, index = s.index;
    if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) {
      throw new Error(`BatchIterator.restore: epoch must be a non-negative integer, got ${String(epoch)}`);
    }
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > this.batchesPerEpoch) {
      throw new Error(`BatchIterator.restore: index must be an integer in [0, ${this.batchesPerEpoch}], got ${String(index)}`);
    }
    this.seed = seed;
    this.epoch = epoch;
    this.index = index;
    this.orderEpoch = -1;
  }

  private orderFor(epoch: number): Int32Array {
    if (this.order === null || this.orderEpoch !== epoch) {
      const n = this.packed.count;
      if (this.shuffle) {
        this.order = new SeededRandom(mix32(this.seed ^ mix32(epoch))).permutation(n);
      } else {
        this.order = new Int32Array(n);
        for (let i = 0; i < n; i++) this.order[i] = i;
      }
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  next(): IteratorResult<Batch> {
    if (this.index >= this.batchesPerEpoch) {
      this.epoch++;
      this.index = 0;
    }
    const order = this.orderFor(this.epoch);
    const { seqLen } = this.packed;
    const B = this.batchSize;
    const inputIds = new Int32Array(B * seqLen);
    const labels = new Int32Array(B * seqLen);
    const sequenceIndices = new Int32Array(B);
    for (let r = 0; r < B; r++) {
      const s = order[this.index * B + r]!;
      sequenceIndices[r] = s;
      inputIds.set(this.packed.inputIds.subarray(s * seqLen, (s + 1) * seqLen), r * seqLen);
      labels.set(this.packed.labels.subarray(s * seqLen, (s + 1) * seqLen), r * seqLen);
    }
    const batch: Batch = { batchSize: B, seqLen, inputIds, labels, sequenceIndices, epoch: this.epoch, index: this.index };
    this.index++;
    return { value: batch, done: false };
  }

  [Symbol.iterator](): Iterator<Batch> {
    return this;
  }
}
