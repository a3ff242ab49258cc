/**
 * JSON text as the Python reference tools write it, so files we write are byte-identical to theirs:
 * - `compareCodePoints`: Python's (and Rust's) string order, by Unicode code point. JavaScript's `<` compares UTF-16
 *   code units, which differs for characters above U+FFFF against U+E000..U+FFFF.
 * - `pythonJsonDumps(value)`: `json.dumps(value, indent=2, sort_keys=True)` (ensure_ascii on, the default), as
 *   transformers writes `model.safetensors.index.json`. Handles what such files hold: objects, arrays, strings,
 *   booleans, null and integers (a non-integer number is refused unless `floats` says how to write it).
 * - `pythonConfigJsonDumps(value)`: config.json as transformers writes it (`to_json_string`: indent 2, sorted keys),
 *   with Python's float repr, and the float fields of transformers' configs (FLOAT_CONFIG_KEYS, at any depth) kept
 *   floats when their value is a whole number (`"router_jitter_noise": 0.0`, not `0`, which transformers 5 refuses).
 */

function codePointKey(unit: number): number {
  // Surrogates (D800..DFFF) stand for code points above FFFF, so they must sort after E000..FFFF.
  return unit >= 0xd800 ? (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000) : unit;
}

export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointKey(x) - codePointKey(y);
  }
  return a.length - b.length;
}

/** A JSON string literal with every character outside printable ASCII escaped, as Python's ensure_ascii does. */
export function asciiJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function pythonJsonDumps(value: unknown, indent = 2): string {
  return dump(value, indent, 0, null, '');
}

/**
 * Config fields transformers types as float (Llama, Mistral, Mixtral, Qwen2/3(-MoE), OLMoE, DeepSeek-V3 configs
 * and their rope parameters) and moe-tune's own float settings.
 */
export const FLOAT_CONFIG_KEYS: ReadonlySet<string> = new Set([
  'rms_norm_eps', 'layer_norm_eps', 'rope_theta', 'initializer_range', 'attention_dropout', 'hidden_dropout',
  'embedding_dropout', 'resid_pdrop', 'router_aux_loss_coef', 'router_jitter_noise', 'routed_scaling_factor',
  'partial_rotary_factor', 'clip_qkv', 'factor', 'low_freq_factor', 'high_freq_factor', 'beta_fast', 'beta_slow',
  'mscale', 'mscale_all_dim', 'attention_factor', 'short_factor', 'long_factor',
  // moe-tune's moe_tune object
  'alpha', 'dropout', 'gate_scale',
]);

/** Python's repr of a float: shortest round-trip digits, `.0` on whole numbers, exponent below 1e-4 or from 1e16. */
export function pythonFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e16)) {
    const [mant, exp] = v.toExponential().split('e') as [string, string];
    const n = Number(exp);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const s = String(v);
  return Number.isInteger(v) ? `${s}.0` : s;
}

export function pythonConfigJsonDumps(value: unknown, floatKeys: ReadonlySet<string> = FLOAT_CONFIG_KEYS): string {
  return `${dump(value, 2, 0, floatKeys, '')}\n`;
}

function dump(value: unknown, indent: number, depth: number, floats: ReadonlySet<string> | null, key: string): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (floats) return Number.isSafeInteger(value) && !floats.has(key) ? String(value) : pythonFloatRepr(value);
    if (!Number.isSafeInteger(value)) throw new Error(`pythonJsonDumps: only integers are supported, got ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return asciiJsonString(value);
  const pad = ' '.repeat(indent * (depth + 1));
  const close = ' '.repeat(indent * depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + dump(v, indent, depth + 1, floats, key)).join(',\n')}\n${close}]`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort(compareCodePoints);
    if (keys.length === 0) return '{}';
    const rec = value as Record<string, unknown>;
    return `{\n${keys.map((k) => `${pad}${asciiJsonString(k)}: ${dump(rec[k], indent, depth + 1, floats, k)}`).join(',\n')}\n${close}}`;
  }
  throw new Error(`pythonJsonDumps: cannot write a value of type ${typeof value}`);
}
