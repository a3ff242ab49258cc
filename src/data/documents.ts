/**
 * The two document shapes the data layer passes around: raw text with an id, and tokens with a
 * loss mask.
 */

/** A raw text document (a corpus file, a paragraph, a JSONL record's text). */
export interface TextDocument {
  /** Stable id, e.g. "ca01" or "notes.txt#3". */
  id: string;
  text: string;
}

/**
 * A tokenised document: token ids and a loss mask of the same length. `mask[i] === 1` means token i
 * is a training target (the model is scored on predicting it from the tokens before it);
 * `mask[i] === 0` means it is context only (a prompt token, a BOS). Packing turns masked targets
 * into label -100 (IGNORE_INDEX).
 */
export interface TokenizedDocument {
  ids: Int32Array;
  mask: Uint8Array;
}

/** The label value the loss ignores (PyTorch / transformers convention). */
export const IGNORE_INDEX = -100;

/** A document whose tokens are all targets, except a leading BOS when `bosId` is given. */
export function documentFromIds(ids: ArrayLike<number>, bosId: number | null = null): TokenizedDocument {
  const arr = Int32Array.from(ids as ArrayLike<number>);
  const mask = new Uint8Array(arr.length).fill(1);
  if (bosId !== null && arr.length > 0 && arr[0] === bosId) mask[0] = 0;
  return { ids: arr, mask };
}

/** Total tokens and target tokens of a set of documents. */
export function countTokens(docs: Iterable<TokenizedDocument>): { tokens: number; targets: number; documents: number } {
  let tokens = 0, targets = 0, documents = 0;
  for (const d of docs) {
    documents++;
    tokens += d.ids.length;
    for (let i = 0; i < d.mask.length; i++) targets += d.mask[i]!;
  }
  return { tokens, targets, documents };
}
