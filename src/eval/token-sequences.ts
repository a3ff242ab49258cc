/**
 * Evaluation sequences from JSONL: each non-blank line is one object holding either
 *   - `input_ids`: token ids (integers in [0, vocab size)), scored as given; or
 *   - `text`: a string, tokenised with the model directory's tokenizer, BOS added when the
 *     tokenizer config says so (`add_bos_token`, else its post-processor template), no EOS.
 * Any other line is the one-line error "FILE:LINE: reason".
 */
import type { MoeTokenizer } from '../data/tokenizer.js';
import { describeJson, isJsonObject, lineError, readJsonlRecords } from './jsonl-lines.js';

export interface TokenSequenceOptions {
  /** Model vocabulary size: ids must be below it. */
  vocabSize: number;
  /** Called the first time a `text` line is met (so input_ids-only files need no tokenizer). */
  tokenizer?: () => MoeTokenizer;
}

export interface TokenSequence {
  ids: number[];
  /** Line number in the source file. */
  line: number;
}

export function checkTokenIds(ids: unknown, vocabSize: number, field: string): number[] {
  if (!Array.isArray(ids)) throw new Error(`"${field}" must be an array of token ids, got ${describeJson(ids)}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`"${field}"[${i}] = ${JSON.stringify(id)} is not a token id (expected an integer in [0, ${vocabSize}))`);
    }
  }
  return ids as number[];
}

/** Reads and tokenises an evaluation JSONL file (see the file comment). */
export function readTokenSequences(file: string, opts: TokenSequenceOptions): TokenSequence[] {
  let tok: MoeTokenizer | null = null;
  const out: TokenSequence[] = [];
  for (const { line, value } of readJsonlRecords(file)) {
    if (tok === null && isJsonObject(value) && value['input_ids'] === undefined && typeof value['text'] === 'string') {
      if (!opts.tokenizer) throw lineError(file, line, '"text" needs a tokenizer, and none is available (use "input_ids")');
      tok = opts.tokenizer(); // its own errors name the tokenizer file
    }
    try {
      if (!isJsonObject(value)) throw new Error(`expected a JSON object with "input_ids" or "text", got ${describeJson(value)}`);
      if (value['input_ids'] !== undefined) {
        out.push({ ids: checkTokenIds(value['input_ids'], opts.vocabSize, 'input_ids'), line });
      } else if (value['text'] !== undefined) {
        const text = value['text'];
        if (typeof text !== 'string') throw new Error(`"text" must be a string, got ${describeJson(text)}`);
        const ids = tok!.encode(text, { addEos: false });
        out.push({ ids: checkTokenIds(ids, opts.vocabSize, 'text (tokenised)'), line });
      } else {
        throw new Error(`expected "input_ids" or "text" (found keys: ${Object.keys(value).join(', ') || 'none'})`);
      }
    } catch (err) {
      throw lineError(file, line, (err as Error).message);
    }
  }
  if (out.length === 0) throw new Error(`${file}: no sequences (expected JSONL lines with "input_ids" or "text")`);
  return out;
}
