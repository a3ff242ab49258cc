/**
 * Our own byte-level BPE trainer (`@huggingface/tokenizers` is inference-only). It produces a
 * standard Hugging Face tokenizer.json (model BPE; ByteLevel pre-tokenizer with the GPT-2 regex,
 * ByteLevel post-processor and decoder, as GPT-2's tokenizer.json has them) that
 * `@huggingface/tokenizers` / MoeTokenizer load and encode with.
 *
 * Algorithm (classic BPE on a word-frequency table):
 *  1. Each text is split on the special tokens (they are never learned from), then pre-tokenised
 *     with the GPT-2 regex; each distinct pre-token ("word") is counted once with its frequency
 *     and turned into its UTF-8 bytes (the 256-symbol byte-level alphabet).
 *  2. Pair counts (sum of word frequencies over adjacent symbol pairs) are kept in a map, with an
 *     index pair -> words containing it, and a max-heap of (count, pair) with lazy invalidation.
 *  3. Repeatedly take the most frequent pair, append the merge, and rewrite only the words that
 *     contain it, updating the counts of the neighbouring pairs incrementally. Within a word,
 *     occurrences are merged left to right ("a a a" -> "aa a"), which is also how the encoder
 *     applies a merge.
 *  Tie rule (documented so results are reproducible): among pairs with equal counts, the pair
 *  with the smaller left token id wins, then the smaller right token id.
 *  Stops when the vocabulary reaches `vocabSize` or the best count drops below `minFrequency`.
 *
 * Vocabulary ids: the special tokens first (0..k-1, in the order given), then the 256 bytes in byte
 * order (id k + b is byte b), then one id per merge in merge order. If a merge yields a string
 * already in the vocabulary (possible: "ab"+"c" and "a"+"bc"), the merge is recorded but no new id
 * is added, as the Hugging Face trainer does. Same input and options give the same JSON, byte for
 * byte.
 */
import { byteToChar, gpt2PreTokenizeRegex } from './byte-level-alphabet.js';

export interface ByteLevelBpeOptions {
  /** Final vocabulary size, special tokens and the 256 bytes included. */
  vocabSize: number;
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number;
  /** Special tokens, given ids 0..k-1 in this order (default ['<s>', '</s>', '<pad>']). */
  specialTokens?: string[];
}

/** The parts of a Hugging Face tokenizer.json this trainer writes. */
export interface ByteLevelBpeTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: {
    id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean;
    normalized: boolean; special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE'; dropout: null; unk_token: string | null; continuing_subword_prefix: null;
    end_of_word_suffix: null; fuse_unk: boolean; byte_fallback: boolean; ignore_merges: boolean;
    vocab: Record<string, number>; merges: string[];
  };
}

export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ['<s>', '</s>', '<pad>'];

/** Max-heap of candidate merges: larger count first, then smaller left id, then smaller right id. */
class PairHeap {
  private counts: number[] = [];
  private lefts: number[] = [];
  private rights: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    if (ci !== cj) return ci > cj;
    const li = this.lefts[i]!, lj = this.lefts[j]!;
    if (li !== lj) return li < lj;
    return this.rights[i]! < this.rights[j]!;
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!; this.counts[i] = this.counts[j]!; this.counts[j] = c;
    const l = this.lefts[i]!; this.lefts[i] = this.lefts[j]!; this.lefts[j] = l;
    const r = this.rights[i]!; this.rights[i] = this.rights[j]!; this.rights[j] = r;
  }

  push(count: number, left: number, right: number): void {
    this.counts.push(count); this.lefts.push(left); this.rights.push(right);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry into `out` ([count, left, right]); false when empty. */
  pop(out: [number, number, number]): boolean {
    const n = this.counts.length;
    if (n === 0) return false;
    out[0] = this.counts[0]!; out[1] = this.lefts[0]!; out[2] = this.rights[0]!;
    const lastC = this.counts.pop()!, lastL = this.lefts.pop()!, lastR = this.rights.pop()!;
    if (n === 1) return true;
    this.counts[0] = lastC; this.lefts[0] = lastL; this.rights[0] = lastR;
    let i = 0;
    const m = n - 1;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < m && this.before(l, best)) best = l;
      if (r < m && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return true;
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Counts the GPT-2 pre-tokens of all texts (special tokens removed first). */
function countWords(texts: Iterable<string>, specialTokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const specialSplit = specialTokens.length > 0
    ? new RegExp(specialTokens.map(escapeRegex).sort((x, y) => y.length - x.length).join('|'), 'g')
    : null;
  const re = gpt2PreTokenizeRegex();
  for (const text of texts) {
    if (typeof text !== 'string') throw new Error(`trainByteLevelBpe: texts must be strings (got ${typeof text})`);
    const pieces = specialSplit ? text.split(specialSplit) : [text];
    for (const piece of pieces) {
      const words = piece.match(re);
      if (!words) continue;
      for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Trains a byte-level BPE tokenizer on `texts` and returns its tokenizer.json object.
 * Pair it with `byteLevelTokenizerConfig(specialTokens)` for tokenizer_config.json.
 */
export function trainByteLevelBpe(texts: Iterable<string>, opts: ByteLevelBpeOptions): ByteLevelBpeTokenizerJson {
  const specialTokens = [...(opts.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  const minFrequency = opts.minFrequency ?? 2;
  const vocabSize = opts.vocabSize;
  const base = specialTokens.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < base) {
    throw new Error(`trainByteLevelBpe: vocabSize must be an integer >= ${base} (special tokens + 256 bytes), got ${vocabSize}`);
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new Error(`trainByteLevelBpe: minFrequency must be an integer >= 1, got ${minFrequency}`);
  }
  const byteChars = new Set(byteToChar);
  const seenSpecial = new Set<string>();
  for (const t of specialTokens) {
    if (typeof t !== 'string' || t.length === 0) throw new Error('trainByteLevelBpe: special tokens must be non-empty strings');
    if (seenSpecial.has(t)) throw new Error(`trainByteLevelBpe: special token "${t}" is listed twice`);
    if (byteChars.has(t)) throw new Error(`trainByteLevelBpe: special token "${t}" collides with a byte-level character`);
    seenSpecial.add(t);
  }

  // Vocabulary: specials, then bytes.
  const vocab: string[] = [...specialTokens];
  for (let b = 0; b < 256; b++) vocab.push(byteToChar[b]!);
  const tokenIds = new Map<string, number>();
  vocab.forEach((t, i) => tokenIds.set(t, i));

  // Word table.
  const wordCounts = countWords(texts, specialTokens);
  const encoder = new TextEncoder();
  const nWords = wordCounts.size;
  const syms: Int32Array[] = new Array(nWords);
  const lens = new Int32Array(nWords);
  const freqs = new Float64Array(nWords);
  let w = 0;
  for (const [word, count] of wordCounts) {
    const bytes = encoder.encode(word);
    const s = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) s[i] = specialTokens.length + bytes[i]!;
    syms[w] = s;
    lens[w] = bytes.length;
    freqs[w] = count;
    w++;
  }
  wordCounts.clear();

  // Pair statistics. key = left * K + right.
  const K = vocabSize;
  const pairCounts = new Map<number, number>();
  const where = new Map<number, number[]>();
  const addWhere = (key: number, word: number): void => {
    const list = where.get(key);
    if (list === undefined) where.set(key, [word]);
    else if (list[list.length - 1] !== word) list.push(word);
  };
  for (let i = 0; i < nWords; i++) {
    const s = syms[i]!, f = freqs[i]!;
    for (let j = 0; j + 1 < lens[i]!; j++) {
      const key = s[j]! * K + s[j + 1]!;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + f);
      addWhere(key, i);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, Math.floor(key / K), key % K);

  const merges: string[] = [];
  const seen = new Int32Array(nWords).fill(-1);
  const top: [number, number, number] = [0, 0, 0];
  let increased = new Set<number>();
  let currentWord = 0;
  const add = (left: number, right: number, delta: number): void => {
    const key = left * K + right;
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
    if (delta > 0) {
      increased.add(key);
      addWhere(key, currentWord);
    }
  };

  let step = 0;
  while (vocab.length < vocabSize) {
    // Pop until an entry whose count is current (entries go stale when counts drop).
    let found = false;
    while (heap.pop(top)) {
      const key = top[1] * K + top[2];
      const actual = pairCounts.get(key) ?? 0;
      if (actual <= 0) continue;
      if (actual !== top[0]) {
        heap.push(actual, top[1], top[2]);
        continue;
      }
      found = true;
      break;
    }
    if (!found || top[0] < minFrequency) break;
    const a = top[1], b = top[2];
    const merged = vocab[a]! + vocab[b]!;
    let c = tokenIds.get(merged);
    if (c === undefined) {
      c = vocab.length;
      vocab.push(merged);
      tokenIds.set(merged, c);
    }
    merges.push(`${vocab[a]} ${vocab[b]}`);

    const key = a * K + b;
    const words = where.get(key) ?? [];
    where.delete(key);
    increased = new Set<number>();
    for (const wi of words) {
      if (seen[wi] === step) continue;
      seen[wi] = step;
      const s = syms[wi]!, n = lens[wi]!, f = freqs[wi]!;
      currentWord = wi;
      let r = 0, o = 0;
      while (r < n) {
        if (r + 1 < n && s[r] === a && s[r + 1] === b) {
          if (o > 0) {
            const left = s[o - 1]!;
            add(left, a, -f);
            add(left, c, f);
          }
          if (r + 2 < n) {
            const right = s[r + 2]!;
            add(b, right, -f);
            add(c, right, f);
          }
          add(a, b, -f);
          s[o++] = c;
          r += 2;
        } else {
          s[o++] = s[r++]!;
        }
      }
      lens[wi] = o;
    }
    pairCounts.delete(key);
    for (const k of increased) {
      const count = pairCounts.get(k) ?? 0;
      if (count > 0) heap.push(count, Math.floor(k / K), k % K);
    }
    step++;
  }

  const vocabObj: Record<string, number> = {};
  vocab.forEach((t, i) => { vocabObj[t] = i; });
  const byteLevel = { type: 'ByteLevel' as const, add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: { ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: specialTokens.includes('<unk>') ? '<unk>' : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObj,
      merges,
    },
  };
}

/**
 * A tokenizer_config.json for a trained byte-level tokenizer: BOS "<s>", EOS "</s>", pad "<pad>",
 * unk "<unk>" when those are among the special tokens; no BOS/EOS added by default (the packer puts
 * EOS between documents); no clean-up of spaces on decode (so decode(encode(s)) === s).
 */
export function byteLevelTokenizerConfig(specialTokens: readonly string[] = DEFAULT_SPECIAL_TOKENS,
  extra: Record<string, unknown> = {}): Record<string, unknown> {
  const has = (t: string): string | null => (specialTokens.includes(t) ? t : null);
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: has('<s>'),
    eos_token: has('</s>'),
    pad_token: has('<pad>'),
    unk_token: has('<unk>'),
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1000000000000000019884624838656,
    ...extra,
  };
}
