/**
 * MoeTokenizer: a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) loaded with
 * `@huggingface/tokenizers` (inference only), with explicit BOS/EOS handling and chat templates
 * rendered by `@huggingface/jinja`.
 *
 * BOS/EOS. `@huggingface/tokenizers`' `encode(text, {add_special_tokens: true})` runs the
 * tokenizer.json post-processor, which for Llama/Mistral is a TemplateProcessing `<s> $A` that
 * always adds BOS, ignoring `add_bos_token` / `add_eos_token` in tokenizer_config.json (which
 * transformers' LlamaTokenizerFast honours by rebuilding that post-processor). So we always encode
 * with `add_special_tokens: false` and add BOS/EOS ourselves:
 *   - `encode(text, {addBos, addEos})` prepends `bosId` / appends `eosId` when asked;
 *   - the defaults (`addBosDefault`, `addEosDefault`) follow transformers: `add_bos_token` /
 *     `add_eos_token` from tokenizer_config.json when present, otherwise whether the post-processor's
 *     single-sequence template starts with the BOS token / ends with the EOS token.
 *   Other special tokens a post-processor would add (BERT's [CLS]/[SEP]) are not: decoder LMs only.
 * Special-token text inside `text` (e.g. "<s>") is parsed as the special token, as transformers
 * does by default (`split_special_tokens=False`); chat templates rely on this.
 *
 * Decoding uses the tokenizer.json decoder; `clean_up_tokenization_spaces` comes from
 * tokenizer_config.json and defaults to false (the library would default it to true).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { writeJsonAtomic } from '../io/atomic.js';
import { requireRegularFile } from '../io/regular-file.js';

export interface EncodeOptions {
  /** Prepend BOS (default: `addBosDefault`). */
  addBos?: boolean;
  /** Append EOS (default: `addEosDefault`). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, ...) from the output. */
  skipSpecial?: boolean;
}

/** One chat message; extra fields (tool calls, names) are passed to the template untouched. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the template's assistant-turn opener (transformers' `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** Extra template variables (e.g. `tools`, `documents`, `date_string`). */
  extra?: Record<string, unknown>;
}

export interface FromJsonOptions {
  /** Used in error messages (a directory or file name). */
  source?: string;
  /** Overrides the config's `chat_template` (e.g. from a chat_template.jinja file). */
  chatTemplate?: string | null;
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJsonFile(path: string): unknown {
  let text: string;
  requireRegularFile(path, 'tokenizer file');
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** A special-token field of tokenizer_config.json: a string or an AddedToken-like object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** The `chat_template` field: a string, or a list of `{name, template}` (we take "default"). */
function pickChatTemplate(v: unknown, source: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = new Map<string, string>();
    for (const item of v) {
      if (!isObject(item) || typeof item.name !== 'string' || typeof item.template !== 'string') {
        throw new Error(`${source}: chat_template list entries must be {"name": string, "template": string}`);
      }
      named.set(item.name, item.template);
    }
    const t = named.get('default');
    if (t === undefined) {
      throw new Error(`${source}: chat_template list has no "default" entry (found: ${[...named.keys()].join(', ')})`);
    }
    return t;
  }
  throw new Error(`${source}: chat_template must be a string or a list of {name, template}`);
}

/** The single-sequence template of a TemplateProcessing post-processor (also inside a Sequence). */
function singleTemplate(postProcessor: unknown): unknown[] | null {
  if (!isObject(postProcessor)) return null;
  if (postProcessor.type === 'TemplateProcessing' && Array.isArray(postProcessor.single)) return postProcessor.single;
  if (postProcessor.type === 'Sequence' && Array.isArray(postProcessor.processors)) {
    for (const p of postProcessor.processors) {
      const s = singleTemplate(p);
      if (s) return s;
    }
  }
  return null;
}

function templateSpecialId(item: unknown): string | null {
  if (isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string') {
    return item.SpecialToken.id;
  }
  return null;
}

export class MoeTokenizer {
  /** Number of ids: one past the largest id of the model vocabulary and the added tokens. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  /** Jinja chat template, or null when the tokenizer has none. */
  readonly chatTemplate: string | null;
  /** Whether `encode` adds BOS / EOS when the option is not given (see file comment). */
  readonly addBosDefault: boolean;
  readonly addEosDefault: boolean;
  /** Where the tokenizer came from (for error messages). */
  readonly source: string;

  private readonly lib: Tokenizer;
  private readonly tokenizerJson: JsonObject;
  private readonly configJson: JsonObject;
  private readonly specialIds: Set<number>;
  private readonly cleanUpSpaces: boolean;
  private compiledTemplate: Template | null = null;
  private hashCache: string | null = null;

  private constructor(tokenizerJson: JsonObject, configJson: JsonObject, opts: FromJsonOptions) {
    const source = opts.source ?? 'tokenizer.json';
    this.source = source;
    if (!isObject(tokenizerJson.model)) {
      throw new Error(`${source}: tokenizer.json has no "model" object (expected a Hugging Face tokenizer.json)`);
    }
    const json: JsonObject = { ...tokenizerJson };
    if (!Array.isArray(json.added_tokens)) json.added_tokens = [];
    for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
      if (json[key] === undefined) json[key] = null;
    }
    this.tokenizerJson = json;
    this.configJson = configJson;
    try {
      this.lib = new Tokenizer(json, configJson);
    } catch (e) {
      throw new Error(`${source}: cannot build tokenizer (${(e as Error).message})`);
    }

    let maxId = -1;
    for (const id of this.lib.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    if (this.vocabSize <= 0) throw new Error(`${source}: tokenizer vocabulary is empty`);

    const added = (json.added_tokens as unknown[]).filter(isObject);
    const addedContents = new Set(added.map((t) => t.content).filter((c): c is string => typeof c === 'string'));
    this.specialIds = new Set(
      added.filter((t) => t.special === true && typeof t.id === 'number').map((t) => t.id as number),
    );

    const template = singleTemplate(json.post_processor);
    const first = template && template.length > 0 ? templateSpecialId(template[0]) : null;
    const last = template && template.length > 0 ? templateSpecialId(template[template.length - 1]) : null;

    const resolve = (field: string, fallback: string | null): [string | null, number | null] => {
      const fromConfig = tokenContent(configJson[field]);
      const token = fromConfig ?? fallback;
      if (token === null) return [null, null];
      const id = this.lib.token_to_id(token);
      if (id === undefined) {
        if (fromConfig !== null) {
          throw new Error(`${source}: tokenizer_config.json ${field} "${token}" is not in the vocabulary`);
        }
        return [null, null];
      }
      return [token, id];
    };
    // Without a config entry: the post-processor's first/last special token, then the usual names.
    [this.bosToken, this.bosId] = resolve('bos_token', first ?? (addedContents.has('<s>') ? '<s>' : null));
    [this.eosToken, this.eosId] = resolve('eos_token', (last !== null && last !== first ? last : null)
      ?? (addedContents.has('</s>') ? '</s>' : addedContents.has('<|endoftext|>') ? '<|endoftext|>' : null));
    [this.padToken, this.padId] = resolve('pad_token', null);
    const modelUnk = tokenContent((json.model as JsonObject).unk_token);
    [this.unkToken, this.unkId] = resolve('unk_token', modelUnk);
    for (const id of [this.bosId, this.eosId, this.padId, this.unkId]) if (id !== null) this.specialIds.add(id);

    this.addBosDefault = typeof configJson.add_bos_token === 'boolean'
      ? configJson.add_bos_token
      : first !== null && first === this.bosToken;
    this.addEosDefault = typeof configJson.add_eos_token === 'boolean'
      ? configJson.add_eos_token
      : last !== null && last === this.eosToken && template !== null && template.length > 1;
    this.cleanUpSpaces = configJson.clean_up_tokenization_spaces === true;

    this.chatTemplate = opts.chatTemplate !== undefined && opts.chatTemplate !== null
      ? opts.chatTemplate
      : pickChatTemplate(configJson.chat_template, `${source} (tokenizer_config.json)`);
  }

  /**
   * Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json` and
   * `dir/chat_template.jinja` (which, as in transformers, wins over the config's chat_template).
   */
  static fromDir(dir: string): MoeTokenizer {
    const tokPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokPath)) {
      throw new Error(`${tokPath}: not found (a tokenizer directory needs tokenizer.json)`);
    }
    const tokenizerJson = readJsonFile(tokPath);
    if (!isObject(tokenizerJson)) throw new Error(`${tokPath}: expected a JSON object`);
    const cfgPath = join(dir, 'tokenizer_config.json');
    let configJson: unknown = {};
    if (existsSync(cfgPath)) {
      configJson = readJsonFile(cfgPath);
      if (!isObject(configJson)) throw new Error(`${cfgPath}: expected a JSON object`);
    }
    const jinjaPath = join(dir, 'chat_template.jinja');
    let chatTemplate: string | null = null;
    if (existsSync(jinjaPath)) {
      try {
        chatTemplate = readFileSync(jinjaPath, 'utf8');
      } catch (e) {
        throw new Error(`${jinjaPath}: cannot read (${(e as Error).message})`);
      }
    }
    return new MoeTokenizer(tokenizerJson, configJson as JsonObject, { source: dir, chatTemplate });
  }

  /** Builds a tokenizer from already-parsed tokenizer.json / tokenizer_config.json objects. */
  static fromJson(tokenizerJson: unknown, configJson: unknown = {}, opts: FromJsonOptions = {}): MoeTokenizer {
    const source = opts.source ?? 'tokenizer.json';
    if (!isObject(tokenizerJson)) throw new Error(`${source}: tokenizer.json must be a JSON object`);
    if (configJson === null || configJson === undefined) configJson = {};
    if (!isObject(configJson)) throw new Error(`${source}: tokenizer_config.json must be a JSON object`);
    return new MoeTokenizer(tokenizerJson, configJson, opts);
  }

  /** sha256 (hex) of the tokenizer.json, the config and the chat template: a cache key. */
  get hash(): string {
    if (this.hashCache === null) {
      const h = createHash('sha256');
      h.update(JSON.stringify(this.tokenizerJson));
      h.update('\n');
      h.update(JSON.stringify(this.configJson));
      h.update('\n');
      h.update(this.chatTemplate ?? '');
      this.hashCache = h.digest('hex');
    }
    return this.hashCache;
  }

  /** Token ids of `text`, with BOS/EOS added per the options (see file comment). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addBos = opts.addBos ?? this.addBosDefault;
    const addEos = opts.addEos ?? this.addEosDefault;
    const ids = text.length === 0 ? [] : this.lib.encode(text, { add_special_tokens: false }).ids;
    if (addBos) {
      if (this.bosId === null) throw new Error(`${this.source}: addBos requested but the tokenizer has no BOS token`);
      ids.unshift(this.bosId);
    }
    if (addEos) {
      if (this.eosId === null) throw new Error(`${this.source}: addEos requested but the tokenizer has no EOS token`);
      ids.push(this.eosId);
    }
    return ids;
  }

  /** Text of `ids`. Throws on an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const list: number[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`${this.source}: cannot decode token id ${id} at position ${i} (expected an integer in [0, ${this.vocabSize}))`);
      }
      list[i] = id;
    }
    const kept = opts.skipSpecial ? list.filter((id) => !this.specialIds.has(id)) : list;
    if (kept.length === 0) return '';
    return this.lib.decode(kept, {
      skip_special_tokens: opts.skipSpecial ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  /** Whether `id` is a special token (added special tokens, BOS, EOS, pad, unk). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Renders `messages` with the chat template, with the variables transformers passes:
   * `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, `unk_token`, `pad_token`.
   * `raise_exception(msg)` (and `range`, `strftime_now`) come from @huggingface/jinja's globals;
   * any render failure, raise_exception included, throws ChatTemplateError "chat template error: msg".
   */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new Error(`${this.source}: the tokenizer has no chat_template (set it in tokenizer_config.json or chat_template.jinja)`);
    }
    if (this.compiledTemplate === null) {
      try {
        this.compiledTemplate = new Template(this.chatTemplate);
      } catch (e) {
        throw new Error(`${this.source}: cannot parse chat_template (${(e as Error).message})`);
      }
    }
    const vars: Record<string, unknown> = {
      ...opts.extra,
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      unk_token: this.unkToken ?? '',
      pad_token: this.padToken ?? '',
    };
    try {
      return this.compiledTemplate.render(vars);
    } catch (e) {
      if (e instanceof ChatTemplateError) throw e;
      throw new ChatTemplateError(`chat template error: ${(e as Error).message}`);
    }
  }

  /** The same tokenizer with another chat template (a model directory without one; --chat-template). */
  withChatTemplate(template: string): MoeTokenizer {
    return new MoeTokenizer(this.tokenizerJson, this.configJson, { source: this.source, chatTemplate: template });
  }

  /** The tokenizer.json and tokenizer_config.json objects this tokenizer was built from. */
  toJson(): { tokenizer: JsonObject; config: JsonObject } {
    return { tokenizer: this.tokenizerJson, config: this.configJson };
  }

  /** special_tokens_map.json as transformers writes it: the special tokens this tokenizer has. */
  specialTokensMap(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of [['bos_token', this.bosToken], ['eos_token', this.eosToken], ['unk_token', this.unkToken], ['pad_token', this.padToken]] as const) {
      if (v !== null) out[k] = v;
    }
    return out;
  }

  /**
   * Writes tokenizer.json, tokenizer_config.json (with the chat template in use) and
   * special_tokens_map.json into `dir` (each via temp file + rename).
   */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const config = this.chatTemplate !== null && this.configJson.chat_template !== this.chatTemplate
      ? { ...this.configJson, chat_template: this.chatTemplate }
      : this.configJson;
    for (const [name, value] of [['tokenizer.json', this.tokenizerJson], ['tokenizer_config.json', config], ['special_tokens_map.json', this.specialTokensMap()]] as const) {
      const path = join(dir, name);
      try {
        writeJsonAtomic(path, value);
      } catch (e) {
        throw new Error(`${path}: cannot write (${(e as Error).message})`);
      }
    }
  }
}

/** Raised by a chat template (`raise_exception`) or by a template that fails to render. */
export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}
