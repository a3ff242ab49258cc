/** Packing into fixed-length sequences (exact, hand-worked) and the resumable batch iterator. */
import { describe, expect, it } from 'vitest';
import { BatchIterator, type Batch } from '../src/data/batch-iterator.js';
import { IGNORE_INDEX, type TokenizedDocument } from '../src/data/documents.js';
import { packDocuments, packedSequence } from '../src/data/packing.js';
import { SeededRandom } from '../src/data/seeded-random.js';

const doc = (ids: number[], mask?: number[]): TokenizedDocument => ({
  ids: Int32Array.from(ids), mask: Uint8Array.from(mask ?? ids.map(() => 1)),
});
const X = IGNORE_INDEX;

describe('packDocuments', () => {
  it('packs a hand-worked example exactly (EOS between documents, shifted labels, masks)', () => {
    // Stream: 1 2 3 9 | 4 5 9 | 6 7 8 9   (EOS = 9 after each document; the second document's
    // first token is a prompt token, mask 0).
    // mask:   1 1 1 1 | 0 1 1 | 1 1 1 1
    const docs = [doc([1, 2, 3]), doc([4, 5], [0, 1]), doc([6, 7, 8, 9])]; // the last already ends with EOS
    const packed = packDocuments(docs, { seqLen: 4, eosId: 9 });
    // n = 11 stream tokens -> floor(10 / 4) = 2 full windows of 5 tokens (overlapping by one).
    expect(packed.count).toBe(2);
    expect([...packed.inputIds]).toEqual([1, 2, 3, 9, /**/ 4, 5, 9, 6]);
    expect([...packed.labels]).toEqual([2, 3, 9, X, /**/ 5, 9, 6, 7]);
    const s1 = packedSequence(packed, 1);
    expect([...s1.inputIds]).toEqual([4, 5, 9, 6]);

    // Without dropLast the tail window (7 8 9) is padded: inputs 7 8 9 pad, labels 8 9 X X.
    const padded = packDocuments(docs, { seqLen: 4, eosId: 9, padId: 0, dropLast: false });
    expect(padded.count).toBe(3);
    expect([...padded.inputIds.subarray(8)]).toEqual([7, 8, 9, 0]);
    expect([...padded.labels.subarray(8)]).toEqual([8, 9, X, X]);

    // seqLen 3 over the same stream: windows start at 0, 3, 6 (n - 1 = 10 -> 3 windows).
    const three = packDocuments(docs, { seqLen: 3, eosId: 9 });
    expect([...three.inputIds]).toEqual([1, 2, 3, 9, 4, 5, 9, 6, 7]);
    expect([...three.labels]).toEqual([2, 3, 9, X, 5, 9, 6, 7, 8]);
  });

  it('predicts every target of the stream exactly once', () => {
    const r = new SeededRandom(3);
    const docs: TokenizedDocument[] = [];
    let targets = 0;
    for (let d = 0; d < 50; d++) {
      const n = 1 + r.nextInt(40);
      const ids = Array.from({ length: n }, () => 10 + r.nextInt(100));
      const mask = ids.map((): number => (r.nextFloat() < 0.7 ? 1 : 0));
      docs.push(doc(ids, mask));
      targets += mask.reduce((a, b) => a + b, 0) + 1; // + its EOS
    }
    const firstIsTarget = docs[0]!.mask[0]!;
    const packed = packDocuments(docs, { seqLen: 16, eosId: 2, dropLast: false });
    const kept = [...packed.labels].filter((l) => l !== X).length;
    expect(kept).toBe(targets - firstIsTarget); // the very first token has no context
  });

  it('rejects bad options and inconsistent documents', () => {
    expect(() => packDocuments([], { seqLen: 0, eosId: 2 })).toThrow('seqLen must be a positive integer');
    expect(() => packDocuments([{ ids: Int32Array.from([1, 2]), mask: new Uint8Array(1) }], { seqLen: 4, eosId: 2 }))
      .toThrow('packDocuments: document 0 has 2 ids but 1 mask entries');
  });
});

function packedOf(count: number, seqLen = 3) {
  const docs = [doc(Array.from({ length: count * seqLen }, (_, i) => 100 + i))];
  const packed = packDocuments(docs, { seqLen, eosId: 1, addEos: true });
  expect(packed.count).toBe(count);
  return packed;
}
const rows = (b: Batch) => [...b.sequenceIndices];

describe('BatchIterator', () => {
  it('covers each epoch as a permutation and is reproducible from the seed', () => {
    const packed = packedOf(10);
    const it1 = new BatchIterator(packed, { batchSize: 3, seed: 42 });
    expect(it1.batchesPerEpoch).toBe(3);
    const epoch0 = [rows(it1.next().value), rows(it1.next().value), rows(it1.next().value)].flat();
    expect(new Set(epoch0).size).toBe(9);
    const b = it1.next().value;
    expect([b.epoch, b.index]).toEqual([1, 0]);
    const again = new BatchIterator(packed, { batchSize: 3, seed: 42 });
    expect([rows(again.next().value), rows(again.next().value), rows(again.next().value)].flat()).toEqual(epoch0);
    const other = new BatchIterator(packed, { batchSize: 3, seed: 43 });
    expect([rows(other.next().value), rows(other.next().value), rows(other.next().value)].flat()).not.toEqual(epoch0);
    // Rows carry the packed data of their sequence.
    const s = b.sequenceIndices[1]!;
    expect([...b.inputIds.subarray(3, 6)]).toEqual([...packedSequence(packed, s).inputIds]);
    expect([...b.labels.subarray(3, 6)]).toEqual([...packedSequence(packed, s).labels]);
  });

  it('keeps the packed order without shuffle', () => {
    const it2 = new BatchIterator(packedOf(5), { batchSize: 2, shuffle: false });
    expect([rows(it2.next().value), rows(it2.next().value), rows(it2.next().value)]).toEqual([[0, 1], [2, 3], [0, 1]]);
  });

  it('state/restore yields the identical remaining sequence of batches, across epochs', () => {
    const packed = packedOf(11);
    const reference = new BatchIterator(packed, { batchSize: 2, seed: 7 });
    const all: number[][] = [];
    for (let i = 0; i < 23; i++) all.push(rows(reference.next().value));
    for (const cut of [0, 1, 4, 5, 6, 12]) {
      const first = new BatchIterator(packed, { batchSize: 2, seed: 7 });
      for (let i = 0; i < cut; i++) first.next();
      const saved = JSON.parse(JSON.stringify(first.state()));
      const resumed = new BatchIterator(packed, { batchSize: 2, seed: 999 });
      resumed.restore(saved);
      const rest: number[][] = [];
      for (let i = cut; i < 23; i++) rest.push(rows(resumed.next().value));
      expect(rest).toEqual(all.slice(cut));
    }
    const end = new BatchIterator(packed, { batchSize: 2, seed: 7 });
    for (let i = 0; i < 5; i++) end.next();
    expect(end.state()).toEqual({ epoch: 0, index: 5, seed: 7 });
  });

  it('rejects bad states and batches larger than the data', () => {
    const packed = packedOf(4);
    expect(() => new BatchIterator(packed, { batchSize: 5 })).toThrow('4 packed sequences cannot fill one batch of 5');
    const it3 = new BatchIterator(packed, { batchSize: 2 });
    expect(() => it3.restore({ epoch: 0, index: 3, seed: 0 })).toThrow('index must be an integer in [0, 2]');
    expect(() => it3.restore({ epoch: -1, index: 0, seed: 0 })).toThrow('epoch must be a non-negative integer');
    expect(() => it3.restore({ epoch: 0, index: 0, seed: 1.5 })).toThrow('seed must be an integer');
  });
});
