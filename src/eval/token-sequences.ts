/**
 * Evaluation sequences from a record file (.jsonl, .json, .csv, .tsv): each record is one line
 * that `train` accepts (data/jsonl-dataset.ts), so the same file evaluates what it trained:
 *   - `input_ids`: token ids (integers in [0, vocab size)), every token scored;
 *   - `text`: tokenised with the model directory's tokenizer, BOS per its config, no EOS, every
 *     token scored;
 *   - `prompt` + `completion`, `messages`, Alpaca, ShareGPT (record-format.ts): only the targets
 *     `train` learns (the completion, the assistant turns) are scored, given what comes before.
 * A sequence longer than the model's max_position_embeddings is an error naming the line (we do not
 * silently extrapolate RoPE or cut windows). Any other bad line is "FILE:LINE: reason".
 */
import { tokenizeJsonlRecord, type RecordShapeOptions } from '../data/jsonl-dataset.js';
import type { MoeTokenizer } from '../data/tokenizer.js';
import { describeJson, isJsonObject, lineError, readJsonlRecords } from './jsonl-lines.js';

export interface TokenSequenceOptions extends RecordShapeOptions {
  /** Model vocabulary size: ids must be below it. */
  vocabSize: number;
  /** Longest sequence the model takes (config max_position_embeddings); longer lines are errors. */
  maxPositions?: number | null;
  /** Called the first time a line needs one (so input_ids-only files need no tokenizer). */
  tokenizer?: () => MoeTokenizer;
}

export interface TokenSequence {
  ids: number[];
  /** Tokens that are scored (1) or context only (0); null: every token after the first. */
  mask: Uint8Array | null;
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

/** Reads and tokenises an evaluation file (see the file comment). */
export function readTokenSequences(file: string, opts: TokenSequenceOptions): TokenSequence[] {
  let tok: MoeTokenizer | null = null;
  const out: TokenSequence[] = [];
  const shape: RecordShapeOptions = { ...(opts.format ? { format: opts.format } : {}), ...(opts.columns ? { columns: opts.columns } : {}) };
  for (const { line, value } of readJsonlRecords(file)) {
    const idsOnly = isJsonObject(value) && value['input_ids'] !== undefined && opts.columns?.['input_ids'] === undefined;
    try {
      if (!isJsonObject(value)) throw new Error(`expected a JSON object with "input_ids", "text", "prompt"/"completion" or "messages", got ${describeJson(value)}`);
      let seq: TokenSequence;
      if (idsOnly) {
        seq = { ids: checkTokenIds(value['input_ids'], opts.vocabSize, 'input_ids'), mask: null, line };
      } else {
        const known = ['text', 'prompt', 'completion', 'messages', 'instruction', 'conversations'];
        if (!opts.columns && (opts.format ?? 'auto') === 'auto' && !known.some((k) => value[k] !== undefined)) {
          throw new Error(`expected "input_ids", "text", "prompt"/"completion", "messages", Alpaca or ShareGPT fields (found keys: ${Object.keys(value).join(', ') || 'none'})`);
        }
        if (tok === null) {
          if (!opts.tokenizer) throw new Error('text needs a tokenizer, and none is available (use "input_ids")');
          tok = opts.tokenizer(); // its own errors name the tokenizer file
        }
        const { doc, kind } = tokenizeJsonlRecord(value, tok, { ...shape, addBos: tok.addBosDefault });
        const ids = checkTokenIds(Array.from(doc.ids), opts.vocabSize, kind === 'text' ? 'text (tokenised)' : `${kind} (tokenised)`);
        seq = { ids, mask: kind === 'text' ? null : doc.mask, line };
      }
      if (opts.maxPositions != null && seq.ids.length > opts.maxPositions) {
        throw new Error(`${seq.ids.length} tokens, longer than the model's max_position_embeddings ${opts.maxPositions} (split the text into shorter lines, or score it in sliding windows with --stride)`);
      }
      out.push(seq);
    } catch (err) {
      throw lineError(file, line, (err as Error).message);
    }
  }
  if (out.length === 0) throw new Error(`${file}: no sequences (expected lines with "input_ids", "text", "prompt"/"completion" or "messages")`);
  return out;
}
