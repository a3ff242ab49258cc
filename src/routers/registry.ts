/**
 * The one list of router strategies, and the parser for `--router NAME:key=value,...`.
 * Each entry names its keys (with defaults) so a bad spec is a one-line error listing what is
 * valid.
 */
import type { Router, RouterSpec } from './router.js';
import { TopKRouter } from './top-k.js';

export interface RouterEntry {
  name: string;
  summary: string;
  /** Keys this router takes, with defaults (undefined = required). */
  keys: Record<string, number | string | boolean | undefined>;
  create(params: Record<string, number | string | boolean>): Router;
}

export const ROUTERS: RouterEntry[] = [
  {
    name: 'top-k',
    summary: 'k largest probabilities, renormalised (Mixtral)',
    keys: { k: 2 },
    create: (p) => new TopKRouter(Number(p['k'])),
  },
];

function entry(name: string): RouterEntry {
  const e = ROUTERS.find((r) => r.name === name);
  if (!e) throw new Error(`unknown router '${name}' (valid: ${ROUTERS.map((r) => r.name).join(', ')})`);
  return e;
}

/** Creates a router from a spec, filling defaults and rejecting unknown keys. */
export function createRouter(spec: RouterSpec): Router {
  const e = entry(spec.name);
  const params: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(spec)) {
    if (k === 'name') continue;
    if (!(k in e.keys)) throw new Error(`router '${e.name}': unknown key '${k}' (valid keys: ${Object.keys(e.keys).join(', ') || 'none'})`);
    params[k] = v;
  }
  for (const [k, d] of Object.entries(e.keys)) {
    if (params[k] === undefined) {
      if (d === undefined) throw new Error(`router '${e.name}': missing key '${k}'`);
      params[k] = d;
    }
  }
  return e.create(params);
}

/**
 * Parses `NAME:key=value,key=value` (numbers and true/false are converted). Ranges for sweeps are
 * handled by the sweep command, not here.
 */
export function parseRouterSpec(text: string): RouterSpec {
  const [name, rest] = text.includes(':') ? [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)] : [text, ''];
  const spec: RouterSpec = { name: name!.trim() };
  entry(spec.name);
  if (rest && rest.trim() !== '') {
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`router spec '${text}': expected key=value, got '${part}'`);
      const k = part.slice(0, eq).trim();
      const raw = part.slice(eq + 1).trim();
      spec[k] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    }
  }
  createRouter(spec); // validates keys and values now, with the one-line error
  return spec;
}
