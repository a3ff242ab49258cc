/**
 * The unigram baseline a language model must beat: add-one (Laplace) smoothed token frequencies
 * counted on the training targets, p(t) = (count(t) + 1) / (N + V), scored on the validation
 * targets. Perplexity = exp(mean -log p) over the same target positions the model is scored on.
 */
export interface UnigramResult {
  /** Mean NLL per validation target (nats). */
  loss: number;
  ppl: number;
  /** Training targets counted and validation targets scored. */
  trainTokens: number;
  evalTokens: number;
}

export function unigramBaseline(trainTargets: Int32Array, evalTargets: Int32Array, vocabSize: number, ignoreIndex = -100): UnigramResult {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`unigram: vocabSize must be a positive integer, got ${vocabSize}`);
  const counts = new Float64Array(vocabSize);
  let n = 0;
  for (const t of trainTargets) {
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= vocabSize) throw new Error(`unigram: training token ${t} outside the vocabulary [0, ${vocabSize})`);
    counts[t]!++;
    n++;
  }
  const denom = n + vocabSize;
  let nll = 0;
  let m = 0;
  for (const t of evalTargets) {
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= vocabSize) throw new Error(`unigram: validation token ${t} outside the vocabulary [0, ${vocabSize})`);
    nll -= Math.log((counts[t]! + 1) / denom);
    m++;
  }
  const loss = m === 0 ? NaN : nll / m;
  return { loss, ppl: Math.exp(loss), trainTokens: n, evalTokens: m };
}
