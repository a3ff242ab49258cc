/**
 * The one list of router strategies, and the parser for `--router NAME:key=value,...`.
 * Each entry names its keys (with defaults) so a bad spec is a one-line error listing what is
 * valid.
 */
import { ExpertChoiceRouter } from './expert-choice.js';
import { GroupTopKRouter } from './group-top-k.js';
import { type NullMapping, NullExpertsRouter } from './null-experts.js';
import { RandomDropRouter } from './random-drop.js';
import type { Router, RouterSpec } from './router.js';
import { TernaryRouter } from './ternary.js';
import { ThresholdRouter } from './threshold.js';
import { TopKRouter } from './top-k.js';
import { TopPRouter } from './top-p.js';

type KeyValue = number | string | boolean;

export interface RouterEntry {
  name: string;
  summary: string;
  /** Keys this router takes, with defaults (undefined = required, null = optional, derived by the router). */
  keys: Record<string, KeyValue | null | undefined>;
  create(params: Record<string, KeyValue | undefined>): Router;
}

export const ROUTERS: RouterEntry[] = [
  {
    name: 'top-k',
    summary: 'k largest softmax probabilities, renormalised over the k (Mixtral, norm_topk_prob) or not (renormalize=false: Qwen2-MoE, OLMoE)',
    keys: { k: 2, renormalize: true },
    create: (p) => new TopKRouter(p['k'] as number, p['renormalize'] as boolean),
  },
  {
    name: 'top-p',
    summary: 'smallest prefix of the sorted probabilities whose sum exceeds p, gates = p (paper 003)',
    keys: { p: undefined },
    create: (p) => new TopPRouter(p['p'] as number),
  },
  {
    name: 'threshold',
    summary: 'XMoE: smallest prefix with sum >= t, capacity factor with priority p - rank (paper 001)',
    keys: { t: 0.9, capacity: 1 },
    create: (p) => new ThresholdRouter(p['t'] as number, p['capacity'] as number),
  },
  {
    name: 'expert-choice',
    summary: 'each expert takes its capacity * T / N best tokens (paper 002; not causal)',
    keys: { capacity: 2 },
    create: (p) => new ExpertChoiceRouter(p['capacity'] as number),
  },
  {
    name: 'random-drop',
    summary: 'top-2, the second expert dropped with probability q, at inference too (paper 000 baseline)',
    keys: { q: undefined, seed: 0 },
    create: (p) => new RandomDropRouter(p['q'] as number, p['seed'] as number),
  },
  {
    name: 'null-experts',
    summary: 'AdaMoE: top-k over N true + m null experts, renormalised over the true ones (paper 004)',
    keys: { k: undefined, m: undefined, mapping: 'zero' },
    create: (p) => new NullExpertsRouter(p['k'] as number, p['m'] as number, p['mapping'] as NullMapping),
  },
  {
    name: 'ternary',
    summary: 'TC-MoE: top-k over E^1, E^-1 and K zero experts, E^0 always in the normaliser (paper 000)',
    keys: { k: 2, zero: null },
    create: (p) => new TernaryRouter(p['k'] as number, p['zero'] as number | undefined),
  },
  {
    name: 'group-top-k',
    summary: 'DeepSeek-V3 / Kimi-K2: sigmoid scores + selection bias, best group_k of groups, top-k inside, renormalised',
    keys: { k: 8, groups: 1, group_k: 1, renormalize: true },
    create: (p) => new GroupTopKRouter(p['k'] as number, p['groups'] as number, p['group_k'] as number, p['renormalize'] as boolean),
  },
];

/** `top-k:k top-p:p ...`: every router with its keys, for error messages. */
export function routerUsage(): string {
  return ROUTERS.map((r) => `${r.name}:${Object.keys(r.keys).join(',')}`).join(' | ');
}

/** `top-k:k=2 | top-p:p | threshold:t=0.9,capacity=1 ...`: every router with its keys' defaults, for --help. */
export function routerHelp(): string {
  return ROUTERS.map((r) => `${r.name}:${Object.entries(r.keys).map(([k, v]) => (v === undefined || v === null ? k : `${k}=${String(v)}`)).join(',')}`).join(' | ');
}

/** A router's keys that have a fixed default (e.g. threshold's capacity = 1), by name. */
export function routerDefaults(name: string): Record<string, KeyValue> {
  const out: Record<string, KeyValue> = {};
  for (const [k, v] of Object.entries(entry(name).keys)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

function entry(name: string): RouterEntry {
  const e = ROUTERS.find((r) => r.name === name);
  if (!e) throw new Error(`unknown router '${name}' (valid: ${routerUsage()})`);
  return e;
}

/** Creates a router from a spec, filling defaults and rejecting unknown or missing keys. */
export function createRouter(spec: RouterSpec): Router {
  if (!spec || typeof spec.name !== 'string') throw new Error(`router spec must have a name (valid: ${routerUsage()})`);
  const e = entry(spec.name);
  const params: Record<string, KeyValue | undefined> = {};
  const valid = Object.keys(e.keys).join(', ') || 'none';
  for (const [k, v] of Object.entries(spec)) {
    if (k === 'name') continue;
    if (!(k in e.keys)) throw new Error(`router '${e.name}': unknown key '${k}' (valid keys: ${valid})`);
    params[k] = v;
  }
  for (const [k, d] of Object.entries(e.keys)) {
    if (params[k] === undefined || params[k] === null) {
      if (d === undefined) throw new Error(`router '${e.name}': missing key '${k}' (keys: ${valid})`);
      params[k] = d ?? undefined;
    }
    const v = params[k];
    if (v !== undefined && typeof d === 'number' && typeof v !== 'number') throw new Error(`router '${e.name}': key '${k}' must be a number, got '${String(v)}'`);
  }
  return e.create(params);
}

/**
 * Parses `NAME:key=value,key=value` (numbers and true/false are converted). Ranges for sweeps are
 * handled by the sweep command, not here.
 */
export function parseRouterSpec(text: string): RouterSpec {
  const colon = text.indexOf(':');
  const name = (colon >= 0 ? text.slice(0, colon) : text).trim();
  const rest = colon >= 0 ? text.slice(colon + 1) : '';
  const spec: RouterSpec = { name };
  entry(spec.name);
  if (rest.trim() !== '') {
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`router spec '${text}': expected key=value, got '${part}' (valid: ${routerUsage()})`);
      const k = part.slice(0, eq).trim();
      const raw = part.slice(eq + 1).trim();
      spec[k] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    }
  }
  createRouter(spec); // validates keys and values now, with the one-line error
  return spec;
}
