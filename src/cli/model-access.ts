/**
 * Opening what commands work on: a model directory (weights loaded), its tokenizer (only when
 * needed), and a --router spec. Errors are the library's one-line messages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveChatTemplate } from '../data/chat-templates.js';
import { MoeTokenizer } from '../data/tokenizer.js';
import { requireModelDir } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ModelConfig } from '../models/config.js';
import { loadDirTokenizer, loadModel } from '../models/load.js';
import { buildSkeleton, isQuantizedModelDir, loadModelQuantized } from '../quant/index.js';
import { createRouter, parseRouterSpec } from '../routers/registry.js';
import type { Router } from '../routers/router.js';

/**
 * Loads a model directory: float weights, or a saved 4-bit (NF4) model as such. First the preflight
 * (quant/skeleton.ts): the model is built from config.json and the safetensors headers alone
 * (names and shapes checked as the load checks them) and `check`, when given, runs on that
 * skeleton (e.g. the surgery passes a command will apply), so a mismatch fails before any weight
 * is read.
 */
export function openModel(dir: string, check?: (skeleton: CausalLM) => void): { model: CausalLM; config: ModelConfig; quantized: boolean } {
  requireModelDir(dir);
  const skeleton = buildSkeleton(dir);
  check?.(skeleton.model);
  if (isQuantizedModelDir(dir)) {
    const q = loadModelQuantized(dir);
    loadDirTokenizer(dir, q.config); // a tokenizer larger than the embedding, as loadModel checks
    return { model: q.model, config: q.config, quantized: true };
  }
  const l = loadModel(dir);
  return { model: l.model, config: l.config, quantized: false };
}

/**
 * The model directory's tokenizer; the error names the missing file. `chatTemplate` (--chat-template
 * FILE|NAME) replaces the directory's template, or supplies one where it has none.
 */
export function openTokenizer(dir: string, chatTemplate?: string): MoeTokenizer {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new Error(`${file}: not found (text input needs the model's tokenizer; use token ids instead)`);
  const tok = MoeTokenizer.fromDir(dir);
  return chatTemplate ? tok.withChatTemplate(resolveChatTemplate(chatTemplate)) : tok;
}

export function hasTokenizer(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'tokenizer.json'));
}

/** A router from --router NAME:key=value,...; a bad spec lists the valid names / keys. */
export function routerOption(text: string): Router {
  try {
    return createRouter(parseRouterSpec(text));
  } catch (err) {
    throw new Error(`--router '${text}': ${(err as Error).message}`);
  }
}

/** Fails early with one line when a data file is missing (before loading a large model). */
export function requireFile(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`${file}: ${what} not found`);
  }
  if (!stat.isFile()) throw new Error(`${file}: not a file (expected ${what})`);
}
