/**
 * What `pretrain` and `train` share: the recipe options (--recipe, --set, --tiny, --steps,
 * --data), the run directory guard, progress on stderr, Ctrl-C, and the recipe help text.
 */
import type { Command } from 'commander';
import { checkRecipeOnResume, listRecipes, loadRecipe, type ResolvedRecipe } from '../recipes/index.js';
import { createProgress, type ProgressSink } from '../train/progress.js';
import { collect, intArg } from './options.js';
import { note } from './output.js';
import { prepareRunDir, type RunDirGuard } from './run-dir.js';
import { stopHandlers } from './stop-on-signal.js';
import type { Trainer } from '../train/trainer.js';

export interface RecipeCliOptions {
  recipe: string;
  out: string;
  set?: string[];
  steps?: number;
  data?: string[];
  resume?: boolean;
  allowRecipeChange?: boolean;
  tiny?: boolean;
}

export function addRecipeOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--recipe <file|name>', 'recipe YAML file, or the name of a recipe shipped in recipes/ (see below)')
    .requiredOption('--out <run_dir>', 'run directory (metrics.jsonl, checkpoints/, recipe.yaml, the model)')
    .option('--set <key.path=value>', 'override a recipe setting, typed by the schema (repeatable)', collect)
    .option('--steps <n>', 'optimizer steps (sets train.steps, clears train.epochs)', intArg(1))
    .option('--data <file>', 'training data file (JSONL or text; repeatable); sets data.source=files', collect)
    .option('--resume', 'continue the newest checkpoint in the run directory')
    .option('--allow-recipe-change', 'with --resume: continue even though the recipe changed in a way that breaks exact resumption (both recipes are recorded in recipe-changes.jsonl)')
    .option('--tiny', "use the recipe's tiny variant (its tiny: block): a small model that runs here in about a minute");
}

/** The recipe with --steps / --data / --set applied. */
export function resolveRecipeOption(o: RecipeCliOptions): ResolvedRecipe {
  const sets = [...(o.set ?? [])];
  if (o.data && o.data.length > 0) sets.unshift('data.source=files', `data.files=${JSON.stringify(o.data)}`);
  if (o.steps !== undefined) sets.push(`train.steps=${o.steps}`, 'train.epochs=null');
  return loadRecipe(o.recipe, { tiny: o.tiny, sets });
}

export interface TrainingSession {
  guard: RunDirGuard;
  progress: ProgressSink;
  onTrainer(trainer: Trainer): void;
  log(line: string): void;
  /** Runs `fn`, removing a half-made run directory on failure and the signal handler afterwards. */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export interface TrainingSessionOptions {
  /** The recipe of this invocation: with --resume it is checked against the run's (src/recipes/recipe-change.ts). */
  recipe?: ResolvedRecipe;
  allowRecipeChange?: boolean;
  /** Who holds the run lock, for the message a second process gets ("moe-tune train"). */
  what?: string;
}

/**
 * Status lines and progress go to stdout (stderr keeps only errors and warnings), or to stderr
 * with --json so stdout holds just the JSON. The run directory is locked until `run` ends.
 */
export function trainingSession(runDir: string, resume: boolean | undefined, json: boolean | undefined, opts: TrainingSessionOptions = {}): TrainingSession {
  const guard = prepareRunDir(runDir, resume, opts.what);
  const log = json ? note : (line: string): void => { process.stdout.write(`${line}\n`); };
  try {
    if (resume && opts.recipe) {
      const check = checkRecipeOnResume(runDir, opts.recipe, opts.allowRecipeChange === true);
      if (check.breaking.length > 0) note(`moe-tune: warning: resuming with a changed recipe (${check.breaking.map((c) => c.path).join(', ')}): not an exact continuation; recorded in recipe-changes.jsonl`);
    }
  } catch (err) {
    guard.release();
    throw err;
  }
  if (guard.staleTemps.length > 0) log(`removed ${guard.staleTemps.length} leftover(s) of an interrupted write: ${guard.staleTemps.join(', ')}`);
  const stops = stopHandlers();
  const stream = json ? process.stderr : process.stdout;
  return {
    guard,
    progress: createProgress({ stream }),
    onTrainer: (t) => stops.onTrainer(t),
    log,
    async run(fn) {
      try {
        return await fn();
      } catch (err) {
        const cleanup = guard.failed();
        if (cleanup !== null) note(`moe-tune: warning: ${cleanup}`);
        throw err;
      } finally {
        stops.dispose();
        guard.release();
      }
    },
  };
}

/** Help text: the shipped recipes. */
export function recipesHelp(kind: 'pretrain' | 'finetune'): string {
  const names = listRecipes().map((r) => {
    try {
      return loadRecipe(r.file).recipe.kind === kind ? r.name : null;
    } catch {
      return null;
    }
  }).filter((n): n is string => n !== null);
  return `\nShipped ${kind} recipes (recipes/): ${names.join(', ') || 'none'}\n`;
}
