import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../../src/tensor/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/**
 * Reference checkpoints with NLLs from an independent implementation (copied from the project's
 * shared/fixtures so a clean clone has them).
 */
export const FIXTURES = path.resolve(here, '../fixtures/reference');

export function fixtureIds(): number[][] {
  return fs.readFileSync(path.join(FIXTURES, 'ids.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).input_ids as number[]);
}

export function expectedNll(): Record<string, { nll: number; tokens: number }> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected-nll.json'), 'utf8'));
}

/** Rows 1 and 2 of the fixture ids, their first `len` tokens: a [2, len] batch of real token ids. */
export function fixtureBatch(len: number): Tensor {
  const rows = fixtureIds().slice(1, 3).map((r) => r.slice(0, len));
  return new Tensor(Int32Array.from(rows.flat()), [2, len]);
}
