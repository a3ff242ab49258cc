/**
 * Loss masks for instruction data: prompt tokens are context (mask 0, label -100 after packing),
 * completion / assistant tokens are targets (mask 1).
 *
 * Tokens are found from character spans of the full text without needing tokenizer offsets: the
 * token boundary of character position c is the length of the longest common prefix of
 * encode(text[0:c]) and encode(text). Tokens before the boundary of a span's start are outside it;
 * a token that straddles a span start (merges prompt and completion characters) counts as a target,
 * one that straddles a span end does not. The whole text is tokenised once, as one string, so the
 * ids are exactly those of the unmasked text.
 *
 * Chat (`messages`): the conversation is rendered with the tokenizer's chat template. Assistant turn
 * i spans from the end of render(messages[0:i], add_generation_prompt=true) to the end of
 * render(messages[0:i+1]); both must be prefixes of the full rendering (true of the usual Llama,
 * Mistral and ChatML templates; otherwise an error). So the span includes what the template writes
 * after the content (e.g. EOS), which the model must learn to produce. The rendering is encoded
 * without an extra BOS (the template writes bos_token itself), as transformers'
 * apply_chat_template does.
 */
import type { ChatMessage, MoeTokenizer } from './tokenizer.js';
import type { TokenizedDocument } from './documents.js';

/** [start, end) character offsets of a target span. */
export type CharSpan = [number, number];

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Encodes `text` and marks as targets the tokens of the given character spans. */
export function encodeWithTargetSpans(tokenizer: MoeTokenizer, text: string, spans: readonly CharSpan[],
  opts: { addBos?: boolean } = {}): TokenizedDocument {
  const addBos = opts.addBos ?? tokenizer.addBosDefault;
  const full = tokenizer.encode(text, { addBos, addEos: false });
  const boundaryCache = new Map<number, number>();
  const boundary = (c: number): number => {
    if (c <= 0) return addBos ? 1 : 0;
    if (c >= text.length) return full.length;
    let b = boundaryCache.get(c);
    if (b === undefined) {
      b = commonPrefix(tokenizer.encode(text.slice(0, c), { addBos, addEos: false }), full);
      boundaryCache.set(c, b);
    }
    return b;
  };
  const mask = new Uint8Array(full.length);
  for (const [start, end] of spans) {
    if (!(start >= 0 && end >= start && end <= text.length)) {
      throw new Error(`encodeWithTargetSpans: span [${start}, ${end}) outside the text (length ${text.length})`);
    }
    if (end === start) continue;
    const startTok = Math.min(boundary(start), full.length);
    const endTok = boundary(end);
    for (let t = startTok; t < endTok; t++) mask[t] = 1;
  }
  return { ids: Int32Array.from(full), mask };
}

/** prompt + completion (concatenated as given); the completion tokens are the targets. */
export function encodePromptCompletion(tokenizer: MoeTokenizer, prompt: string, completion: string,
  opts: { addBos?: boolean } = {}): TokenizedDocument {
  const text = prompt + completion;
  return encodeWithTargetSpans(tokenizer, text, [[prompt.length, text.length]], opts);
}

/** Renders `messages` with the chat template; assistant turns are the targets. */
export function encodeChat(tokenizer: MoeTokenizer, messages: readonly ChatMessage[]): TokenizedDocument {
  const all = [...messages];
  const full = tokenizer.applyChatTemplate(all, { addGenerationPrompt: false });
  const spans: CharSpan[] = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i]!.role !== 'assistant') continue;
    const before = tokenizer.applyChatTemplate(all.slice(0, i), { addGenerationPrompt: true });
    const through = i + 1 === all.length ? full : tokenizer.applyChatTemplate(all.slice(0, i + 1), { addGenerationPrompt: false });
    if (!full.startsWith(before) || !full.startsWith(through) || through.length < before.length) {
      throw new Error(`chat template is not incremental: cannot locate assistant message ${i} in the rendered conversation`);
    }
    spans.push([before.length, through.length]);
  }
  return encodeWithTargetSpans(tokenizer, full, spans, { addBos: false });
}
