/**
 * Writing a model directory from a command: atomically (temp dir, then rename), never over a
 * non-empty directory without --force, 4-bit layers saved as such, and the source directory's
 * tokenizer files carried along so the output is a complete model directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../models/causal-lm.js';
import { checkpointFloatDtype, type FloatStorageDtype } from '../io/index.js';
import { saveModel } from '../models/save.js';
import { nf4Sites, saveQuantizedModel } from '../quant/index.js';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'generation_config.json'];

/** The tokenizer (and generation) files of a model directory, by name. */
export function tokenizerFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of TOKENIZER_FILES) {
    const f = path.join(dir, name);
    if (fs.existsSync(f)) out[name] = fs.readFileSync(f, 'utf8');
  }
  return out;
}

export interface ModelDirOutput {
  force?: boolean;
  /** The input model directory: its tokenizer and generation_config.json files are carried. */
  source?: string | null;
  /** @deprecated use source */
  tokenizerFrom?: string | null;
  /** Storage dtype of float tensors (default: the source checkpoint's, else F32). */
  dtype?: FloatStorageDtype;
}

export async function writeModelDir(model: CausalLM, out: string, opts: ModelDirOutput): Promise<void> {
  const source = opts.source ?? opts.tokenizerFrom ?? null;
  const extraFiles = source ? tokenizerFiles(source) : {};
  const dtype = opts.dtype ?? (source && fs.existsSync(path.join(source, 'config.json')) ? checkpointFloatDtype(source) : 'F32');
  if (nf4Sites(model).length > 0) await saveQuantizedModel(model, out, { force: opts.force, extraFiles, dtype });
  else await saveModel(model, out, { force: opts.force, extraFiles, dtype });
}
