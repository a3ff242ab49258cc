/**
 * Instruction data as people have it, mapped onto the record kinds jsonl-dataset.ts tokenises
 * (`text`, `prompt` + `completion`, `messages`, `input_ids`):
 *   - `columns` (data.columns / --columns): renames, {our field: their column}, applied first,
 *     e.g. {prompt: "question", completion: "answer"};
 *   - Alpaca (`instruction`, optional `input`, `output`): the Stanford Alpaca prompt
 *     (ALPACA_PROMPT / ALPACA_PROMPT_NO_INPUT, as in tatsu-lab/stanford_alpaca's train.py) is the
 *     prompt and `output` the completion, so only the response is trained on;
 *   - ShareGPT (`conversations`: [{from, value}]): `messages` with from human / user -> user,
 *     gpt / assistant / chatgpt / bard / bing -> assistant, system -> system, tool / function /
 *     observation -> tool. Any other `from` is an error naming the turn.
 * `format` 'auto' (default) recognises each line by its fields; a named format requires them.
 */
import type { ChatMessage } from './tokenizer.js';

export const DATA_FORMATS = ['auto', 'text', 'prompt_completion', 'messages', 'input_ids', 'alpaca', 'sharegpt'] as const;
export type DataFormat = typeof DATA_FORMATS[number];

/** Our field -> the column that holds it in the user's data. */
export type ColumnMap = Readonly<Record<string, string>>;

export const COLUMN_TARGETS = ['text', 'prompt', 'completion', 'messages', 'input_ids', 'instruction', 'input', 'output', 'conversations'] as const;

/** Chat roles a `messages` line may use (as the common templates know them). */
export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool'] as const;

export const ALPACA_PROMPT = 'Below is an instruction that describes a task, paired with an input that provides further context. '
  + 'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
export const ALPACA_PROMPT_NO_INPUT = 'Below is an instruction that describes a task. '
  + 'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n';

const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', chatgpt: 'assistant', bard: 'assistant', bing: 'assistant',
  system: 'system', tool: 'tool', function: 'tool', observation: 'tool',
};

/** A record-level problem (the caller adds FILE:LINE). */
export class RecordFormatError extends Error {}

function str(rec: Record<string, unknown>, field: string, what: string): string {
  const v = rec[field];
  if (typeof v !== 'string') throw new RecordFormatError(`"${field}" must be a string (${what}), got ${v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/** Checks the columns mapping names known targets. */
export function checkColumnMap(columns: ColumnMap, where: string): void {
  for (const k of Object.keys(columns)) {
    if (!(COLUMN_TARGETS as readonly string[]).includes(k)) throw new Error(`${where}: unknown column target ${JSON.stringify(k)} (expected one of ${COLUMN_TARGETS.join(', ')})`);
  }
}

function renamed(rec: Record<string, unknown>, columns: ColumnMap): Record<string, unknown> {
  const entries = Object.entries(columns);
  if (entries.length === 0) return rec;
  const out: Record<string, unknown> = { ...rec };
  for (const [ours, theirs] of entries) {
    if (!(theirs in rec)) throw new RecordFormatError(`column ${JSON.stringify(theirs)} (mapped to "${ours}") is missing (found: ${Object.keys(rec).join(', ') || 'none'})`);
    out[ours] = rec[theirs];
  }
  return out;
}

function alpaca(rec: Record<string, unknown>): Record<string, unknown> {
  const instruction = str(rec, 'instruction', 'Alpaca');
  const input = rec['input'] === undefined || rec['input'] === null ? '' : str(rec, 'input', 'Alpaca');
  const output = str(rec, 'output', 'Alpaca');
  const prompt = (input.trim() === '' ? ALPACA_PROMPT_NO_INPUT : ALPACA_PROMPT.replace('{input}', () => input)).replace('{instruction}', () => instruction);
  return { prompt, completion: output };
}

function sharegpt(rec: Record<string, unknown>): Record<string, unknown> {
  const conv = rec['conversations'];
  if (!Array.isArray(conv) || conv.length === 0) throw new RecordFormatError('"conversations" must be a non-empty array of {from, value} (ShareGPT)');
  const messages: ChatMessage[] = conv.map((t, i) => {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new RecordFormatError(`"conversations"[${i}] must be an object {from, value}`);
    const turn = t as Record<string, unknown>;
    const from = turn['from'] ?? turn['role'];
    const value = turn['value'] ?? turn['content'];
    if (typeof from !== 'string') throw new RecordFormatError(`"conversations"[${i}].from must be a string`);
    if (typeof value !== 'string') throw new RecordFormatError(`"conversations"[${i}].value must be a string`);
    const role = SHAREGPT_ROLES[from.toLowerCase()];
    if (role === undefined) throw new RecordFormatError(`"conversations"[${i}].from ${JSON.stringify(from)} is not a known ShareGPT role (expected ${Object.keys(SHAREGPT_ROLES).join(', ')})`);
    return { role, content: value };
  });
  return { messages };
}

/** Checks every message's role is a known chat role. */
export function checkChatRoles(messages: readonly ChatMessage[]): void {
  messages.forEach((m, i) => {
    if (!(CHAT_ROLES as readonly string[]).includes(m.role)) {
      throw new RecordFormatError(`"messages"[${i}].role ${JSON.stringify(m.role)} is not a chat role (expected ${CHAT_ROLES.join(', ')}${m.role === 'human' || m.role === 'gpt' ? '; ShareGPT turns go in "conversations" as {from, value}' : ''})`);
    }
  });
}

/**
 * The record in our field names (`text` | `prompt`+`completion` | `messages` | `input_ids`),
 * per `format` and `columns` (see the file comment).
 */
export function normalizeRecord(rec: Record<string, unknown>, format: DataFormat = 'auto', columns: ColumnMap = {}): Record<string, unknown> {
  const r = renamed(rec, columns);
  switch (format) {
    case 'alpaca':
      return alpaca(r);
    case 'sharegpt':
      return sharegpt(r);
    case 'auto':
      if (r['input_ids'] === undefined && r['messages'] === undefined && r['prompt'] === undefined && r['completion'] === undefined) {
        if (r['conversations'] !== undefined) return sharegpt(r);
        if (r['instruction'] !== undefined && r['output'] !== undefined) return alpaca(r);
      }
      return r;
    default: {
      const need: Record<string, string[]> = { text: ['text'], prompt_completion: ['prompt', 'completion'], messages: ['messages'], input_ids: ['input_ids'] };
      const fields = need[format]!;
      const missing = fields.filter((f) => r[f] === undefined);
      if (missing.length > 0) throw new RecordFormatError(`data format ${format} needs ${fields.map((f) => `"${f}"`).join(' and ')} (missing ${missing.join(', ')}; found: ${Object.keys(r).join(', ') || 'none'})`);
      const out: Record<string, unknown> = {};
      for (const f of fields) out[f] = r[f];
      return out;
    }
  }
}
