/**
 * The model card of `hub push DIR`: the recipe, metrics and expert-load table found in DIR or in
 * the run directory it belongs to (DIR, its parent or grandparent: RUN/model, RUN/final/model,
 * RUN/final/adapter), rendered by src/hub's renderModelCard.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderModelCard, type LoadTable, type ModelCardInput } from '../hub/index.js';
import { readJsonObject } from '../io/index.js';
import { readRunMetrics, recentTokensPerExpert } from '../report/run-metrics.js';
import { looksLikeRepoId } from './model-source.js';

/** The run directory DIR belongs to (DIR itself, its parent or grandparent), or null. */
export function findRunDir(dir: string): string | null {
  let cur = path.resolve(dir);
  for (let i = 0; i < 3; i++) {
    if (fs.existsSync(path.join(cur, 'recipe.json')) || fs.existsSync(path.join(cur, 'metrics.jsonl'))) return cur;
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return null;
}

function readObject(file: string): Record<string, unknown> | null {
  if (!fs.existsSync(file)) return null;
  try {
    return readJsonObject(file);
  } catch {
    return null;
  }
}

function numbersOf(prefix: string, obj: unknown, out: Record<string, number>): void {
  if (obj === null || typeof obj !== 'object') return;
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[`${prefix}${k}`] = v;
  }
}

/** Metrics worth a table: eval.json (before / after), summary.json (pretraining). */
export function runMetrics(runDir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const ev = readObject(path.join(runDir, 'eval.json'));
  if (ev) {
    if (typeof ev['steps'] === 'number') out['steps'] = ev['steps'];
    numbersOf('eval_before_', ev['before'], out);
    numbersOf('eval_', ev['after'], out);
  }
  const sum = readObject(path.join(runDir, 'summary.json'));
  if (sum) {
    numbersOf('', sum['metrics'], out);
    numbersOf('mean_', sum['mean'], out);
  }
  return out;
}

/** Share of routed assignments per expert and MoE layer over the last logged steps. */
export function runLoadTable(runDir: string, lastN = 20): LoadTable | undefined {
  const file = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return undefined;
  let recent;
  try {
    recent = recentTokensPerExpert(readRunMetrics(file), lastN);
  } catch {
    return undefined;
  }
  if (!recent) return undefined;
  return {
    rows: recent.layers.map((l, i) => {
      const c = recent.counts[i]!;
      const sum = c.reduce((a, b) => a + b, 0);
      return { label: `layer ${l}`, values: c.map((v) => (sum > 0 ? v / sum : 0)) };
    }),
    caption: `Share of routed token assignments per expert over training steps ${recent.steps[0]}-${recent.steps[1]} (max / mean = 1 is perfectly balanced).`,
  };
}

export interface CardFacts {
  input: ModelCardInput;
  runDir: string | null;
}

export function modelCardFor(dir: string, repo: string): CardFacts {
  const runDir = findRunDir(dir);
  const recipe = runDir ? readObject(path.join(runDir, 'recipe.json')) : null;
  const adapter = readObject(path.join(dir, 'adapter_config.json'));
  const base = (adapter?.['base_model_name_or_path'] as string | null | undefined) ?? (recipe?.['base_model'] as string | null | undefined) ?? null;
  const input: ModelCardInput = {
    repo,
    libraryName: adapter ? 'peft' : 'transformers',
    tags: ['mixture-of-experts', ...(recipe && typeof recipe['name'] === 'string' ? [`recipe:${recipe['name']}`] : [])],
    ...(base && looksLikeRepoId(base) ? { baseModel: base } : {}),
    ...(recipe && typeof recipe['paper'] === 'string' ? { description: `Trained with moe-tune's recipe \`${String(recipe['name'])}\` (${String(recipe['paper'])}).` } : {}),
  };
  if (runDir) {
    const metrics = runMetrics(runDir);
    if (Object.keys(metrics).length > 0) input.metrics = metrics;
    const load = runLoadTable(runDir);
    if (load) input.loadTable = load;
  }
  if (recipe) input.recipe = recipe;
  return { input, runDir };
}

export function renderCardFor(dir: string, repo: string): { card: string; runDir: string | null } {
  const f = modelCardFor(dir, repo);
  return { card: renderModelCard(f.input), runDir: f.runDir };
}
