/**
 * Strided sliding-window scoring of sequences longer than the model's context, as in Hugging Face's
 * "Perplexity of fixed-length models" guide: windows of at most `maxLength` tokens start every
 * `stride` tokens; each window scores only the tokens that the previous window did not reach, with
 * the window's earlier tokens as context. stride = maxLength gives disjoint windows (each window's
 * first token is then context only, as in the guide); a smaller stride gives every scored token at
 * least maxLength - stride tokens of context. The loop stops at the window that reaches the end.
 *
 * The windows are ordinary (ids, mask) sequences, so perplexity() scores them like any other input;
 * a sequence no longer than maxLength is one window, unchanged.
 */

export interface WindowOptions {
  /** Tokens per window (at most the model's max_position_embeddings). */
  maxLength: number;
  /** Tokens between window starts, 1..maxLength. */
  stride: number;
}

export interface ScoredWindow {
  ids: number[];
  /** Token j of the window is scored (1) or context (0); position 0 is never scored. */
  mask: Uint8Array;
  /** The index of the input sequence this window came from. */
  source: number;
}

export function checkWindowOptions(w: WindowOptions, where = 'window'): void {
  if (!Number.isInteger(w.maxLength) || w.maxLength < 2) throw new Error(`${where}: max length must be an integer >= 2, got ${w.maxLength}`);
  if (!Number.isInteger(w.stride) || w.stride < 1 || w.stride > w.maxLength) {
    throw new Error(`${where}: stride must be an integer in 1..${w.maxLength} (the max length), got ${w.stride}`);
  }
}

/**
 * The windows of every sequence, in input order. `masks[i]` (optional) marks which tokens of sequence i
 * may be scored at all (a prompt is context only); a window scores token t (absolute index) when the
 * previous window ended at or before t, t is not the window's first token, and the mask allows it.
 */
export function slidingWindows(
  sequences: readonly ArrayLike<number>[],
  opts: WindowOptions,
  masks?: readonly (Uint8Array | null)[],
): ScoredWindow[] {
  checkWindowOptions(opts);
  const out: ScoredWindow[] = [];
  sequences.forEach((seq, source) => {
    const n = seq.length;
    const allowed = masks?.[source] ?? null;
    let prevEnd = 0;
    for (let begin = 0; ; begin += opts.stride) {
      const end = Math.min(begin + opts.maxLength, n);
      const ids: number[] = [];
      const mask = new Uint8Array(end - begin);
      for (let t = begin; t < end; t++) {
        ids.push(seq[t]!);
        mask[t - begin] = t > begin && t >= prevEnd && (allowed === null || allowed[t] === 1) ? 1 : 0;
      }
      out.push({ ids, mask, source });
      prevEnd = end;
      if (end >= n) break;
    }
  });
  return out;
}
