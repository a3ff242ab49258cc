/**
 * `--resume` with a different recipe: training continues exactly (the same losses and weights as one
 * uninterrupted run) only with the recipe the run started with. Comparing the run's RUN_DIR/recipe.json with
 * the recipe of this invocation, every changed setting that alters the trajectory (learning rate, schedule,
 * seeds, sequence length, batch, aux-loss weights, model, data, steps, ...) is refused, naming each one, unless
 * the user says `--allow-recipe-change`; then both recipes are recorded: the new one in recipe.yaml / .json and
 * the old one, with the list of changes, as a line of RUN_DIR/recipe-changes.jsonl.
 *
 * Settings that leave the trajectory alone may change freely: the name / paper / description, how often
 * checkpoints are written and how many are kept, the time budget, and evaluation-only settings (eval.every,
 * eval.batch_size, eval.max_batches, eval.sweep).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError, withPath } from '../io/index.js';
import type { ResolvedRecipe } from './load-recipe.js';
import { RECIPE_JSON } from './write-recipe.js';

export const RECIPE_CHANGES_FILE = 'recipe-changes.jsonl';

/** Recipe paths whose change does not affect the training trajectory. */
export const TRAJECTORY_NEUTRAL: readonly string[] = [
  'name', 'paper', 'description', 'train.checkpoint_every', 'train.keep_checkpoints', 'train.time_budget_s',
  'eval.every', 'eval.batch_size', 'eval.max_batches', 'eval.sweep',
];

export interface RecipeChange {
  path: string;
  before: unknown;
  after: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Leaf-level differences between two JSON values (arrays compared whole). */
export function diffJson(before: unknown, after: unknown, prefix = ''): RecipeChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffJson(before[k], after[k], prefix === '' ? k : `${prefix}.${k}`));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: prefix, before: before ?? null, after: after ?? null }];
}

function neutral(p: string): boolean {
  return TRAJECTORY_NEUTRAL.some((n) => p === n || p.startsWith(`${n}.`));
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? 'null';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export interface RecipeChangeCheck {
  /** Every change (neutral ones included). */
  changes: RecipeChange[];
  /** The changes that break exact resumption. */
  breaking: RecipeChange[];
}

/**
 * Compares RUN_DIR/recipe.json with `resolved` before a --resume. Throws one line naming each breaking change
 * unless `allow`; with `allow`, appends {time, changes, previous} to RUN_DIR/recipe-changes.jsonl. A run
 * directory without recipe.json (a fresh start) passes.
 */
export function checkRecipeOnResume(runDir: string, resolved: ResolvedRecipe, allow: boolean): RecipeChangeCheck {
  const file = path.join(runDir, RECIPE_JSON);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { changes: [], breaking: [] };
    throw new FileFormatError(file, `cannot read the run's recipe (${(err as Error).message})`);
  }
  let previous: unknown;
  try {
    previous = JSON.parse(text);
  } catch (err) {
    throw new FileFormatError(file, `not valid JSON (${(err as Error).message}); expected the recipe this run started with`);
  }
  if (!isPlainObject(previous)) throw new FileFormatError(file, 'expected a JSON object (the recipe this run started with)');
  const changes = diffJson(previous, resolved.recipe);
  const breaking = changes.filter((c) => !neutral(c.path));
  if (breaking.length === 0) return { changes, breaking };
  if (!allow) {
    const list = breaking.slice(0, 6).map((c) => `${c.path} ${show(c.before)} -> ${show(c.after)}`).join(', ');
    const more = breaking.length > 6 ? ` and ${breaking.length - 6} more` : '';
    throw new Error(`${file}: --resume with a changed recipe: ${list}${more}; this breaks exact resumption (pass --allow-recipe-change to continue anyway; both recipes are then recorded in ${RECIPE_CHANGES_FILE})`);
  }
  const log = path.join(runDir, RECIPE_CHANGES_FILE);
  try {
    fs.appendFileSync(log, `${JSON.stringify({ time: new Date().toISOString(), changes, previous })}\n`);
  } catch (err) {
    throw withPath(err, log);
  }
  return { changes, breaking };
}
