/**
 * A tiny byte-level BPE tokenizer (trained here on a few sentences) saved into a model directory,
 * for tests of text input. Special tokens: <s> = 0, </s> = 1, <pad> = 2; vocabulary 300, so the
 * model's vocab_size must be at least 300 (and its bos / eos ids 0 / 1 to match).
 */
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../../src/data/bpe-trainer.js';
import { MoeTokenizer } from '../../src/data/tokenizer.js';

export const TINY_TOKENIZER_VOCAB = 300;

const TEXTS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.',
  'A mixture of experts routes each token to a few experts; the router picks them.',
  'Question: what colour is the sky? Answer: blue. Question: what colour is grass? Answer: green.',
  'Once upon a time there was a small model that learned to count: one, two, three, four.',
];

export function tinyTokenizer(addBos = true): MoeTokenizer {
  const json = trainByteLevelBpe(TEXTS, { vocabSize: TINY_TOKENIZER_VOCAB, minFrequency: 2 });
  return MoeTokenizer.fromJson(json, byteLevelTokenizerConfig(undefined, { add_bos_token: addBos }), { source: 'tiny tokenizer' });
}

/** Writes tokenizer.json + tokenizer_config.json into `dir` and returns the tokenizer. */
export function writeTinyTokenizer(dir: string, addBos = true): MoeTokenizer {
  const tok = tinyTokenizer(addBos);
  tok.save(dir);
  return MoeTokenizer.fromDir(dir);
}
