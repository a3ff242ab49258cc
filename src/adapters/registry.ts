/**
 * The list of surgery passes by name, and the parser for `NAME:key=value,...` specs
 * (`null-experts:m=8,top_k=3`, `lora:r=8,alpha=16,targets=q_proj|v_proj`). Each entry names its
 * keys with defaults, so a bad spec is one line listing what is valid. A user-defined pass can be
 * registered to become reachable from specs (see docs/surgery.md).
 */
import { MO_LORA_DEFAULT_TARGETS, parseTargets } from '../lora/index.js';
import { decomposeFfnPass } from './decompose-ffn.js';
import { loraPass, moLoraPass } from './lora-passes.js';
import { nullExpertsPass } from './null-experts.js';
import type { SurgeryPass } from './surgery-pass.js';
import { ternaryPass } from './ternary.js';

export type SpecValue = number | string | boolean;

export interface SurgeryPassEntry {
  name: string;
  /** Other names accepted in specs. */
  aliases?: string[];
  summary: string;
  /** Keys with defaults (undefined = required). */
  keys: Record<string, SpecValue | undefined>;
  create(params: Record<string, SpecValue>, spec: string): SurgeryPass;
}

function int(params: Record<string, SpecValue>, key: string, pass: string): number {
  const v = params[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`surgery pass '${pass}': ${key} must be an integer, got '${String(v)}'`);
  return v;
}

function num(params: Record<string, SpecValue>, key: string, pass: string): number {
  const v = params[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`surgery pass '${pass}': ${key} must be a number, got '${String(v)}'`);
  return v;
}

function bool(params: Record<string, SpecValue>, key: string, pass: string): boolean {
  const v = params[key];
  if (typeof v !== 'boolean') throw new Error(`surgery pass '${pass}': ${key} must be true or false, got '${String(v)}'`);
  return v;
}

function intList(params: Record<string, SpecValue>, key: string, pass: string): number[] | undefined {
  const v = params[key];
  if (v === '' || v === undefined) return undefined;
  const parts = String(v).split('|');
  const out = parts.map((p) => Number(p.trim()));
  if (out.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`surgery pass '${pass}': ${key} must be layer indices separated by |, got '${String(v)}'`);
  return out;
}

export const SURGERY_PASSES: SurgeryPassEntry[] = [
  {
    name: 'null-experts',
    aliases: ['add-null-experts'],
    summary: 'AdaMoE null experts: gate2 = gate rows tiled m/N times, top-k over N + m (Mixtral), or m null LoRA experts (Mo-LoRA)',
    keys: { m: 8, top_k: 3, mapping: 'zero' },
    create: (p, spec) => {
      const mapping = String(p['mapping']);
      if (mapping !== 'zero' && mapping !== 'identity') throw new Error(`surgery pass 'null-experts': mapping must be zero or identity, got '${mapping}'`);
      return nullExpertsPass({ m: int(p, 'm', 'null-experts'), topK: int(p, 'top_k', 'null-experts'), mapping }, spec);
    },
  },
  {
    name: 'ternary',
    aliases: ['add-ternary-rows'],
    summary: 'TC-MoE ternary router: 2N + K rows (E^1 = old gate, E^-1, E^0) with bias 0 / -1 / -10',
    keys: { zero: '', std: 0.006 },
    create: (p, spec) => ternaryPass({ zero: p['zero'] === '' ? undefined : int(p, 'zero', 'ternary'), std: num(p, 'std', 'ternary') }, spec),
  },
  {
    name: 'lora',
    summary: "LoRA on target linears (names|suffixes, all-linear, or re:<regex>; default: the family's PEFT default, q_proj|v_proj); y = Wx + (alpha/r) B A x",
    keys: { r: 8, alpha: 16, dropout: 0, targets: '', exclude: '', layers: '', rslora: false },
    create: (p, spec) => loraPass({
      r: int(p, 'r', 'lora'),
      alpha: num(p, 'alpha', 'lora'),
      dropout: num(p, 'dropout', 'lora'),
      targets: p['targets'] === '' ? null : parseTargets(String(p['targets']), "surgery pass 'lora': targets"),
      exclude: p['exclude'] === '' ? null : parseTargets(String(p['exclude']), "surgery pass 'lora': exclude"),
      layers: intList(p, 'layers', 'lora') ?? null,
      rslora: bool(p, 'rslora', 'lora'),
    }, spec),
  },
  {
    name: 'mo-lora',
    aliases: ['add-lora-experts'],
    summary: 'Mo-LoRA (AdaMoE on dense models): per target linear a random router and n LoRA experts, top-k, optional null experts',
    keys: { experts: 4, r: 8, alpha: 16, dropout: 0, top_k: 2, null: 0, targets: MO_LORA_DEFAULT_TARGETS.join('|') },
    create: (p, spec) => moLoraPass({
      experts: int(p, 'experts', 'mo-lora'),
      r: int(p, 'r', 'mo-lora'),
      alpha: num(p, 'alpha', 'mo-lora'),
      dropout: num(p, 'dropout', 'mo-lora'),
      topK: int(p, 'top_k', 'mo-lora'),
      nullExperts: int(p, 'null', 'mo-lora'),
      targets: parseTargets(String(p['targets']), "surgery pass 'mo-lora': targets"),
    }, spec),
  },
  {
    name: 'decompose-ffn',
    aliases: ['decompose'],
    summary: "XMoE: dense FFN -> N small experts + zero router, outputs scaled by N (threshold t=1, capacity=N: the dense function)",
    keys: { experts: undefined, layers: '' },
    create: (p, spec) => decomposeFfnPass({ experts: int(p, 'experts', 'decompose-ffn'), layers: intList(p, 'layers', 'decompose-ffn') }, spec),
  },
];

/** Makes a user-defined pass reachable from specs (replaces an entry of the same name). */
export function registerSurgeryPass(entry: SurgeryPassEntry): void {
  const i = SURGERY_PASSES.findIndex((e) => e.name === entry.name);
  if (i >= 0) SURGERY_PASSES[i] = entry;
  else SURGERY_PASSES.push(entry);
}

function findEntry(name: string): SurgeryPassEntry {
  const e = SURGERY_PASSES.find((x) => x.name === name || (x.aliases ?? []).includes(name));
  if (!e) throw new Error(`unknown surgery pass '${name}' (valid: ${SURGERY_PASSES.map((x) => x.name).join(', ')})`);
  return e;
}

/** Creates a pass from a name and parameters, filling defaults and rejecting unknown keys. */
export function createSurgeryPass(name: string, params: Record<string, SpecValue> = {}, spec?: string): SurgeryPass {
  const e = findEntry(name);
  const full: Record<string, SpecValue> = {};
  for (const [k, v] of Object.entries(params)) {
    if (!(k in e.keys)) throw new Error(`surgery pass '${e.name}': unknown key '${k}' (valid keys: ${Object.keys(e.keys).join(', ') || 'none'})`);
    full[k] = v;
  }
  for (const [k, d] of Object.entries(e.keys)) {
    if (full[k] === undefined) {
      if (d === undefined) throw new Error(`surgery pass '${e.name}': missing key '${k}'`);
      full[k] = d;
    }
  }
  const text = spec ?? (Object.keys(params).length ? `${e.name}:${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(',')}` : e.name);
  const pass = e.create(full, text);
  // a user-defined create() may ignore the spec: reports still name the pass by it
  return pass.spec === undefined ? Object.assign(Object.create(pass) as SurgeryPass, { spec: text }) : pass;
}

/**
 * Parses `NAME:key=value,key=value` into a pass (numbers and true/false converted; list values
 * such as targets use `|`).
 */
export function parseSurgerySpec(text: string): SurgeryPass {
  const colon = text.indexOf(':');
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  findEntry(name);
  const params: Record<string, SpecValue> = {};
  if (rest.trim() !== '') {
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`surgery spec '${text}': expected key=value, got '${part}'`);
      const k = part.slice(0, eq).trim();
      const raw = part.slice(eq + 1).trim();
      if (k in params) throw new Error(`surgery spec '${text}': key '${k}' given twice`);
      params[k] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    }
  }
  return createSurgeryPass(name, params, text.trim());
}
