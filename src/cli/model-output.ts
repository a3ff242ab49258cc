/**
 * Writing a model directory from a command: atomically (temp dir, then rename), never over a
 * non-empty directory without --force, 4-bit layers saved as such, and the source directory's
 * tokenizer files carried along so the output is a complete model directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CausalLM } from '../models/causal-lm.js';
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

export async function writeModelDir(model: CausalLM, out: string, opts: { force?: boolean; tokenizerFrom?: string | null }): Promise<void> {
  const extraFiles = opts.tokenizerFrom ? tokenizerFiles(opts.tokenizerFrom) : {};
  if (nf4Sites(model).length > 0) await saveQuantizedModel(model, out, { force: opts.force, extraFiles });
  else await saveModel(model, out, { force: opts.force, extraFiles });
}
