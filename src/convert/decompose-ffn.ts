/**
 * decomposeFfn: a dense Llama -> an XMoEForCausalLM whose chosen FFNs are N small experts plus a
 * router (paper 001), as a new model (the input is left as it was). See
 * src/adapters/decompose-ffn.ts for the math and for moe-tune's function-preserving choice (zero
 * router, outputs scaled by N, threshold t = 1 and capacity N).
 */
import { decomposeFfnPass, type DecomposeOptions } from '../adapters/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { Rng } from '../tensor/index.js';
import { cloneModel } from './model-source.js';

export interface DecomposeResult {
  model: CausalLM;
  /** What the conversion did (for reports). */
  notes: string[];
}

export function decomposeFfn(model: CausalLM, opts: DecomposeOptions): DecomposeResult {
  const pass = decomposeFfnPass(opts);
  const problem = pass.check(model);
  if (problem !== null) throw new Error(`decompose-ffn: ${problem}`);
  const copy = cloneModel(model);
  const notes: string[] = [];
  pass.apply(copy, { rng: new Rng(0), note: (l) => notes.push(l) });
  return { model: copy, notes };
}
