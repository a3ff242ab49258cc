/**
 * The Hugging Face model directory layout: `config.json`, weights (see checkpoint.ts) and optional
 * `generation_config.json`, `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`.
 * This file only finds and parses files; validating a config's fields is the models layer's job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from './checkpoint.js';
import { readJsonObject } from './json-object-file.js';

export const CONFIG_FILE = 'config.json';

/** Absolute paths of the files present in a model directory (null when absent). */
export interface HfFiles {
  dir: string;
  config: string | null;
  generationConfig: string | null;
  tokenizer: string | null;
  tokenizerConfig: string | null;
  specialTokensMap: string | null;
  /** `model.safetensors`, when present. */
  singleWeights: string | null;
  /** `model.safetensors.index.json`, when present. */
  weightsIndex: string | null;
}

/** Throws one line unless `dir` exists and is a directory. */
export function requireModelDir(dir: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new Error(`${dir}: model directory not found`);
  }
  if (!stat.isDirectory()) throw new Error(`${dir}: not a directory (expected a Hugging Face model directory)`);
}

/** The parsed `config.json` of a model directory (unvalidated). */
export function readHfConfig(dir: string): Record<string, unknown> {
  requireModelDir(dir);
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) throw new Error(`${file}: not found (a Hugging Face model directory needs config.json)`);
  return readJsonObject(file);
}

/** Which of the known files a model directory holds. */
export function listHfFiles(dir: string): HfFiles {
  requireModelDir(dir);
  const at = (name: string): string | null => {
    const p = path.join(dir, name);
    return fs.existsSync(p) ? path.resolve(p) : null;
  };
  return {
    dir: path.resolve(dir),
    config: at(CONFIG_FILE),
    generationConfig: at('generation_config.json'),
    tokenizer: at('tokenizer.json'),
    tokenizerConfig: at('tokenizer_config.json'),
    specialTokensMap: at('special_tokens_map.json'),
    singleWeights: at(SINGLE_WEIGHTS_FILE),
    weightsIndex: at(WEIGHTS_INDEX_FILE),
  };
}
