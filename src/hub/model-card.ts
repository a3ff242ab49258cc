/**
 * The model card (README.md) written with a pushed model or adapter: YAML front matter the Hub reads
 * (library_name, tags, base_model, license, datasets, pipeline_tag), then markdown: what the model is, the
 * metrics, the per-layer expert load table and the resolved training recipe. Pure function of its input, so the
 * card is reproducible.
 */
import { stringify } from 'yaml';

/** Per-layer expert load: each row is one MoE layer, each value the fraction of routed assignments an expert got. */
export type LoadTable =
  | readonly (readonly number[])[]
  | { rows: readonly { label: string; values: readonly number[] }[]; columns?: readonly string[]; caption?: string };

export interface ModelCardInput {
  /** Heading (default: the repo name, else "moe-tune model"). */
  title?: string;
  /** `org/name` on the Hub, for the usage snippet. */
  repo?: string;
  /** Hub id(s) of the model this one was adapted from. */
  baseModel?: string | readonly string[];
  /** Extra tags; "moe-tune" is always added. */
  tags?: readonly string[];
  /** Front matter library_name (default "transformers"; use "peft" for adapters). */
  libraryName?: string;
  license?: string;
  datasets?: readonly string[];
  /** Default "text-generation". */
  pipelineTag?: string;
  /** Free markdown paragraph under the heading. */
  description?: string;
  /** The resolved recipe (object, rendered as YAML) or its YAML text. */
  recipe?: Readonly<Record<string, unknown>> | string;
  /** Metric name -> value (numbers are shown with up to 5 significant digits). */
  metrics?: Readonly<Record<string, number | string>>;
  loadTable?: LoadTable;
  /** Python usage snippet (how transformers / PEFT load this directory), shown first under Usage. */
  pythonUsage?: string;
  /** A note under the usage snippet (e.g. what the 4-bit layout needs). */
  usageNote?: string;
}

/** Escapes text for a markdown table cell (pipes, line breaks). */
export function tableCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A number as shown in the card: integers as they are, large values with 2 decimals, others with 5 significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'n/a' : v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  const trim = (s: string): string => s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  if (a >= 1000) return trim(v.toFixed(2));
  if (a < 1e-4) return v.toExponential(3);
  return trim(v.toPrecision(5));
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(tableCell).join(' | ')} |`;
  return [line(header), `|${header.map(() => ' --- ').join('|')}|`, ...rows.map(line)].join('\n');
}

/** A fence longer than any backtick run inside `text`. */
function fenced(lang: string, text: string): string {
  const longest = Math.max(2, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${lang}\n${text.replace(/\n+$/, '')}\n${fence}`;
}

function loadRows(table: LoadTable): { rows: { label: string; values: readonly number[] }[]; columns: string[] | undefined; caption: string | undefined } {
  if (Array.isArray(table)) {
    return { rows: (table as readonly (readonly number[])[]).map((values, i) => ({ label: String(i), values })), columns: undefined, caption: undefined };
  }
  const t = table as Exclude<LoadTable, readonly (readonly number[])[]>;
  return { rows: t.rows.map((r) => ({ label: r.label, values: r.values })), columns: t.columns === undefined ? undefined : [...t.columns], caption: t.caption };
}

/** The expert-load section: one row per layer, a column per expert (as %), and max / mean (the imbalance). */
export function renderLoadTable(table: LoadTable): string {
  const { rows, columns, caption } = loadRows(table);
  const width = Math.max(0, ...rows.map((r) => r.values.length));
  const names = columns ?? Array.from({ length: width }, (_, i) => `E${i}`);
  const header = ['layer', ...names.slice(0, width), 'max / mean'];
  const body = rows.map((r) => {
    const mean = r.values.reduce((s, v) => s + v, 0) / Math.max(1, r.values.length);
    const max = Math.max(...r.values);
    const cells = Array.from({ length: width }, (_, i) => (i < r.values.length ? `${(r.values[i]! * 100).toFixed(1)}%` : ''));
    return [r.label, ...cells, mean > 0 ? (max / mean).toFixed(2) : 'n/a'];
  });
  const intro = caption ?? 'Share of routed token assignments each expert received, per MoE layer (max / mean = 1 is perfectly balanced).';
  return `${intro}\n\n${markdownTable(header, body)}`;
}

/** Renders the README.md text. */
export function renderModelCard(input: ModelCardInput): string {
  const tags = Array.from(new Set(['moe-tune', ...(input.tags ?? [])]));
  const front: Record<string, unknown> = { library_name: input.libraryName ?? 'transformers' };
  if (input.license !== undefined) front['license'] = input.license;
  if (input.baseModel !== undefined) front['base_model'] = typeof input.baseModel === 'string' ? input.baseModel : [...input.baseModel];
  if (input.datasets !== undefined && input.datasets.length > 0) front['datasets'] = [...input.datasets];
  front['pipeline_tag'] = input.pipelineTag ?? 'text-generation';
  front['tags'] = tags;

  const title = input.title ?? (input.repo !== undefined ? input.repo.split('/').pop()! : 'moe-tune model');
  const parts: string[] = [`---\n${stringify(front).trimEnd()}\n---`, `# ${title.replace(/\r?\n/g, ' ')}`];

  const base = input.baseModel === undefined ? [] : typeof input.baseModel === 'string' ? [input.baseModel] : [...input.baseModel];
  const summary =
    input.description ??
    `Trained with moe-tune ${base.length > 0 ? `from ${base.map((b) => `[${b}](https://huggingface.co/${b})`).join(', ')}` : 'from scratch'}.`;
  parts.push(summary);

  if (input.metrics !== undefined && Object.keys(input.metrics).length > 0) {
    const rows = Object.entries(input.metrics).map(([k, v]) => [k, typeof v === 'number' ? formatNumber(v) : v]);
    parts.push(`## Metrics\n\n${markdownTable(['metric', 'value'], rows)}`);
  }
  if (input.loadTable !== undefined) parts.push(`## Expert load\n\n${renderLoadTable(input.loadTable)}`);
  if (input.recipe !== undefined) {
    const text = typeof input.recipe === 'string' ? input.recipe : stringify(input.recipe);
    parts.push(`## Recipe\n\nThe resolved recipe this model was trained with:\n\n${fenced('yaml', text)}`);
  }
  if (input.repo !== undefined || input.pythonUsage !== undefined) {
    const usage = [
      ...(input.pythonUsage !== undefined ? [fenced('python', input.pythonUsage)] : []),
      ...(input.usageNote !== undefined ? [input.usageNote] : []),
      ...(input.repo !== undefined ? [fenced('sh', `moe-tune hub pull ${input.repo}`)] : []),
    ];
    parts.push(`## Usage\n\n${usage.join('\n\n')}`);
  }
  return `${parts.join('\n\n')}\n`;
}
