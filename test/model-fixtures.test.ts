/**
 * The reference fixtures: tiny-llama (bf16, tied, sharded) and tiny-mixtral (f32, sharded) score
 * ids.jsonl to the NLL an independent implementation of the transformers math computed.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/models/load.js';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import { noGrad, ops, Tensor, withScope } from '../src/tensor/index.js';
import { expectedNll, FIXTURES, fixtureIds } from './helpers/fixtures.js';

function meanNll(dir: string): { nll: number; tokens: number } {
  const { model } = loadModel(dir);
  let total = 0;
  let tokens = 0;
  for (const seq of fixtureIds()) {
    withScope(() => noGrad(() => {
      const ids = new Tensor(Int32Array.from(seq), [1, seq.length]);
      const loss = ops.crossEntropy(model.forward(ids), nextTokenTargets(ids), { reduction: 'sum' });
      total += loss.item();
      tokens += seq.length - 1;
    }));
  }
  return { nll: total / tokens, tokens };
}

describe('reference fixtures', () => {
  const expected = expectedNll();
  for (const name of ['tiny-llama', 'tiny-mixtral']) {
    it(`${name} reproduces the reference NLL within 1e-5 relative`, () => {
      const got = meanNll(path.join(FIXTURES, name));
      expect(got.tokens).toBe(expected[name]!.tokens);
      expect(Math.abs(got.nll - expected[name]!.nll) / expected[name]!.nll).toBeLessThan(1e-5);
    });
  }
});
