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

/**
 * What the directory is and how Python loads it: a PEFT adapter, a model with moe-tune's remote code
 * (trust_remote_code=True), moe-tune's 4-bit layout (moe-tune only; `convert merge` gives a float model), or a
 * plain transformers checkpoint. Decides library_name, tags and the usage snippet of the card.
 */
export function directoryKind(dir: string, repo: string, base: string | null): Pick<ModelCardInput, 'libraryName' | 'pythonUsage' | 'usageNote'> & { tags: string[] } {
  const adapter = readObject(path.join(dir, 'adapter_config.json'));
  if (adapter) {
    const b = base ?? 'BASE_MODEL';
    return {
      libraryName: 'peft', tags: ['peft', 'lora'],
      pythonUsage: `from transformers import AutoModelForCausalLM\nfrom peft import PeftModel\n\nbase = AutoModelForCausalLM.from_pretrained(${JSON.stringify(b)})\nmodel = PeftModel.from_pretrained(base, ${JSON.stringify(repo)})`,
    };
  }
  const cfg = readObject(path.join(dir, 'config.json')) ?? {};
  const moe = ['num_local_experts', 'num_experts', 'n_routed_experts'].some((k) => typeof cfg[k] === 'number');
  const tags = moe ? ['mixture-of-experts'] : [];
  if (cfg['quantization_config']) {
    return {
      libraryName: 'moe-tune', tags: [...tags, '4-bit', 'nf4'],
      usageNote: "The linears are stored 4-bit (NF4) in moe-tune's layout; load it with moe-tune, or write a float model transformers loads with `moe-tune convert merge --model DIR --out MERGED --dtype bf16`.",
    };
  }
  if (cfg['auto_map'] && typeof cfg['auto_map'] === 'object') {
    return {
      libraryName: 'transformers', tags: [...tags, 'custom_code'],
      pythonUsage: `from transformers import AutoModelForCausalLM\n\n# moe-tune's architecture (its modeling code ships with the model)\nmodel = AutoModelForCausalLM.from_pretrained(${JSON.stringify(repo)}, trust_remote_code=True)`,
    };
  }
  return {
    libraryName: 'transformers', tags,
    pythonUsage: `from transformers import AutoModelForCausalLM\n\nmodel = AutoModelForCausalLM.from_pretrained(${JSON.stringify(repo)})`,
  };
}

export function modelCardFor(dir: string, repo: string): CardFacts {
  const runDir = findRunDir(dir);
  const recipe = runDir ? readObject(path.join(runDir, 'recipe.json')) : null;
  const adapter = readObject(path.join(dir, 'adapter_config.json'));
  const base = (adapter?.['base_model_name_or_path'] as string | null | undefined) ?? (recipe?.['base_model'] as string | null | undefined) ?? null;
  const kind = directoryKind(dir, repo, base && looksLikeRepoId(base) ? base : null);
  const input: ModelCardInput = {
    repo,
    libraryName: kind.libraryName,
    tags: [...kind.tags, ...(recipe && typeof recipe['name'] === 'string' ? [`recipe:${recipe['name']}`] : [])],
    ...(kind.pythonUsage !== undefined ? { pythonUsage: kind.pythonUsage } : {}),
    ...(kind.usageNote !== undefined ? { usageNote: kind.usageNote } : {}),
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
