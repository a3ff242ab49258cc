/**
 * JSON text as the Python reference tools write it, so files we write are byte-identical to theirs:
 * - `compareCodePoints`: Python's (and Rust's) string order, by Unicode code point. JavaScript's `<` compares UTF-16
 *   code units, which differs for characters above U+FFFF against U+E000..U+FFFF.
 * - `pythonJsonDumps(value)`: `json.dumps(value, indent=2, sort_keys=True)` (ensure_ascii on, the default), as
 *   transformers writes `model.safetensors.index.json`. Handles what such files hold: objects, arrays, strings,
 *   booleans, null and integers (a non-integer number is refused: Python's float repr differs from JavaScript's).
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
  return dump(value, indent, 0);
}

function dump(value: unknown, indent: number, depth: number): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`pythonJsonDumps: only integers are supported, got ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return asciiJsonString(value);
  const pad = ' '.repeat(indent * (depth + 1));
  const close = ' '.repeat(indent * depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + dump(v, indent, depth + 1)).join(',\n')}\n${close}]`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort(compareCodePoints);
    if (keys.length === 0) return '{}';
    const rec = value as Record<string, unknown>;
    return `{\n${keys.map((k) => `${pad}${asciiJsonString(k)}: ${dump(rec[k], indent, depth + 1)}`).join(',\n')}\n${close}}`;
  }
  throw new Error(`pythonJsonDumps: cannot write a value of type ${typeof value}`);
}
