/**
 * Packs tokenised documents into fixed-length training sequences.
 *
 * Stream: the documents are concatenated in order, each followed by EOS (unless it already ends
 * with EOS, e.g. a chat template that closes assistant turns with it). The EOS is a target (mask 1),
 * so the model learns where a document ends. There is no attention mask between documents: a
 * packed sequence attends across the EOS boundary, as in GPT-style pretraining.
 *
 * Labels are ALREADY SHIFTED (our choice, documented): sequence k covers the window of seqLen + 1
 * stream tokens starting at k * seqLen;
 *     inputIds[t] = stream[k*seqLen + t]                                   t = 0..seqLen-1
 *     labels[t]   = stream[k*seqLen + t + 1], or -100 when that token's mask is 0
 * so labels[t] is the target of the logits at position t (do NOT shift again), and consecutive
 * windows overlap by one token: every stream token after the first is predicted exactly once.
 * With `dropLast` (default) a trailing window shorter than seqLen + 1 is dropped; otherwise it is
 * padded with `padId` (default EOS) and label -100.
 */
import { IGNORE_INDEX, type TokenizedDocument } from './documents.js';

export interface PackOptions {
  seqLen: number;
  eosId: number;
  /** Pad id for the last partial sequence when dropLast is false (default eosId). */
  padId?: number;
  /** Drop the trailing partial sequence (default true). */
  dropLast?: boolean;
  /** Put EOS after each document (default true). */
  addEos?: boolean;
}

export interface PackedSequences {
  seqLen: number;
  /** Number of sequences. */
  count: number;
  /** count * seqLen ids, sequence-major. */
  inputIds: Int32Array;
  /** count * seqLen shifted labels, -100 where not a target. */
  labels: Int32Array;
}

class GrowableStream {
  ids = new Int32Array(1 << 16);
  mask = new Uint8Array(1 << 16);
  length = 0;

  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.ids.length) return;
    let cap = this.ids.length;
    while (cap < need) cap *= 2;
    const ids = new Int32Array(cap);
    ids.set(this.ids.subarray(0, this.length));
    const mask = new Uint8Array(cap);
    mask.set(this.mask.subarray(0, this.length));
    this.ids = ids;
    this.mask = mask;
  }

  push(id: number, m: number): void {
    this.reserve(1);
    this.ids[this.length] = id;
    this.mask[this.length] = m;
    this.length++;
  }

  append(doc: TokenizedDocument): void {
    this.reserve(doc.ids.length);
    this.ids.set(doc.ids, this.length);
    this.mask.set(doc.mask, this.length);
    this.length += doc.ids.length;
  }
}

/** Packs `docs` as described in the file comment. */
export function packDocuments(docs: Iterable<TokenizedDocument>, opts: PackOptions): PackedSequences {
  const { seqLen, eosId } = opts;
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`packDocuments: seqLen must be a positive integer, got ${seqLen}`);
  if (!Number.isInteger(eosId) || eosId < 0) throw new Error(`packDocuments: eosId must be a non-negative integer, got ${eosId}`);
  const padId = opts.padId ?? eosId;
  const dropLast = opts.dropLast ?? true;
  const addEos = opts.addEos ?? true;

  const stream = new GrowableStream();
  let index = 0;
  for (const doc of docs) {
    if (doc.ids.length !== doc.mask.length) {
      throw new Error(`packDocuments: document ${index} has ${doc.ids.length} ids but ${doc.mask.length} mask entries`);
    }
    index++;
    if (doc.ids.length === 0) continue;
    stream.append(doc);
    if (addEos && doc.ids[doc.ids.length - 1] !== eosId) stream.push(eosId, 1);
  }

  const n = stream.length;
  const full = n > 0 ? Math.floor((n - 1) / seqLen) : 0;
  const partial = !dropLast && n > 1 && (n - 1) % seqLen !== 0 ? 1 : 0;
  const count = full + partial;
  const inputIds = new Int32Array(count * seqLen);
  const labels = new Int32Array(count * seqLen);
  const ids = stream.ids, mask = stream.mask;
  for (let k = 0; k < count; k++) {
    const start = k * seqLen;
    const base = k * seqLen;
    for (let t = 0; t < seqLen; t++) {
      const pos = start + t;
      if (pos + 1 < n) {
        inputIds[base + t] = ids[pos]!;
        labels[base + t] = mask[pos + 1] ? ids[pos + 1]! : IGNORE_INDEX;
      } else {
        inputIds[base + t] = pos < n ? ids[pos]! : padId;
        labels[base + t] = IGNORE_INDEX;
      }
    }
  }
  return { seqLen, count, inputIds, labels };
}

/** Sequence i of a packed set (views, no copy). */
export function packedSequence(packed: PackedSequences, i: number): { inputIds: Int32Array; labels: Int32Array } {
  if (!Number.isInteger(i) || i < 0 || i >= packed.count) {
    throw new Error(`packedSequence: index ${i} out of range [0, ${packed.count})`);
  }
  const a = i * packed.seqLen, b = a + packed.seqLen;
  return { inputIds: packed.inputIds.subarray(a, b), labels: packed.labels.subarray(a, b) };
}
