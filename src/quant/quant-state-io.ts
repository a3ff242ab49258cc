/**
 * On-disk form of an NF4 weight, mirroring what bitsandbytes' `Linear4bit` writes into a state dict
 * (`QuantState.as_dict(packed=True)`), so the layout is familiar and the values carry over. For a
 * module at PATH:
 *
 *   PATH.weight                                   U8  [ceil(n / 2), 1]  packed 4-bit indices
 *                                                                       (element 2i high nibble)
 *   PATH.weight.absmax                            U8  [blocks]  8-bit scale indices (double quant)
 *                                                 F32 [blocks]  float scales (no double quant)
 *   PATH.weight.quant_map                         F32 [16]      the NF4 code book
 *   PATH.weight.nested_absmax                     F32 [ceil(blocks / 256)]   (double quant only)
 *   PATH.weight.nested_quant_map                  F32 [256]     the 8-bit dynamic code book (idem)
 *   PATH.weight.quant_state.bitsandbytes__nf4     U8  [bytes]   UTF-8 JSON, as Python's json.dumps:
 *     {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [out, in],
 *      "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": <float>}
 *
 * The names are bitsandbytes' own keys; "nested_offset" is the mean subtracted from the scales.
 */
import type { TensorToWrite } from '../io/index.js';
import type { Checkpoint } from '../io/index.js';
import { nf4BlockCount, type Nf4Weight } from './nf4.js';

export const QUANT_STATE_SUFFIX = '.quant_state.bitsandbytes__nf4';

/** Python's repr() of a float (what json.dumps writes): shortest digits, '1e-05' style exponents. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    body = `${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) {
    body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else {
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1);
    body = `${intPart}.${frac.length > 0 ? frac : '0'}`;
  }
  return neg ? `-${body}` : body;
}

/** The quant_state JSON text for a weight (key order and spacing as bitsandbytes' json.dumps writes it). */
export function quantStateJson(w: Nf4Weight): string {
  const parts = [
    `"quant_type": "nf4"`,
    `"blocksize": ${w.blockSize}`,
    `"dtype": ${JSON.stringify(w.sourceDtype)}`,
    `"shape": [${w.shape.join(', ')}]`,
  ];
  if (w.nested) {
    parts.push(`"nested_blocksize": ${w.nested.nestedBlockSize}`, '"nested_dtype": "float32"',
      `"nested_offset": ${pythonFloatRepr(w.nested.offset)}`);
  }
  return `{${parts.join(', ')}}`;
}

/** The tensors that store `w` for the module at `path`. */
export function nf4Tensors(path: string, w: Nf4Weight): TensorToWrite[] {
  const p = `${path}.weight`;
  const out: TensorToWrite[] = [
    { name: p, dtype: 'U8', shape: [w.codes.length, 1], data: w.codes },
    { name: `${p}.quant_map`, dtype: 'F32', shape: [w.code.length], data: Float32Array.from(w.code) },
  ];
  if (w.nested) {
    out.push(
      { name: `${p}.absmax`, dtype: 'U8', shape: [w.nested.qabsmax.length], data: w.nested.qabsmax },
      { name: `${p}.nested_absmax`, dtype: 'F32', shape: [w.nested.nestedAbsmax.length], data: w.nested.nestedAbsmax },
      { name: `${p}.nested_quant_map`, dtype: 'F32', shape: [w.nested.nestedCode.length], data: Float32Array.from(w.nested.nestedCode) },
    );
  } else {
    out.push({ name: `${p}.absmax`, dtype: 'F32', shape: [w.absmax!.length], data: w.absmax! });
  }
  const json = new TextEncoder().encode(quantStateJson(w));
  out.push({ name: `${p}${QUANT_STATE_SUFFIX}`, dtype: 'U8', shape: [json.length], data: json });
  return out;
}

/** Names of the tensors that belong to the NF4 weight `PATH.weight` (for "unused tensor" checks). */
export function nf4TensorNames(weightName: string, nested: boolean): string[] {
  const names = [weightName, `${weightName}.quant_map`, `${weightName}.absmax`, `${weightName}${QUANT_STATE_SUFFIX}`];
  if (nested) names.push(`${weightName}.nested_absmax`, `${weightName}.nested_quant_map`);
  return names;
}

interface ParsedQuantState {
  quant_type: string;
  blocksize: number;
  dtype: string;
  shape: number[];
  nested_blocksize?: number;
  nested_offset?: number;
}

/** Parses a weight's quant_state JSON, with one-line errors naming the file and tensor. */
export function readQuantState(ckpt: Checkpoint, weightName: string): ParsedQuantState {
  const key = `${weightName}${QUANT_STATE_SUFFIX}`;
  const where = `${ckpt.info(key).file}: tensor '${key}'`;
  let st: unknown;
  try {
    st = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(ckpt.readRaw(key)));
  } catch (e) {
    throw new Error(`${where}: not a UTF-8 JSON quant state (${(e as Error).message})`);
  }
  const s = st as Record<string, unknown>;
  if (typeof s !== 'object' || s === null) throw new Error(`${where}: expected a JSON object`);
  if (s['quant_type'] !== 'nf4') throw new Error(`${where}: quant_type ${JSON.stringify(s['quant_type'])} (only "nf4" is supported)`);
  const bs = s['blocksize'];
  if (typeof bs !== 'number' || !Number.isInteger(bs) || bs < 2 || bs % 2 !== 0) throw new Error(`${where}: blocksize must be an even integer, got ${JSON.stringify(bs)}`);
  const shape = s['shape'];
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${where}: shape must be [out, in], got ${JSON.stringify(shape)}`);
  }
  const nestedBs = s['nested_blocksize'];
  if (nestedBs !== undefined && (typeof nestedBs !== 'number' || !Number.isInteger(nestedBs) || nestedBs < 1)) {
    throw new Error(`${where}: nested_blocksize must be a positive integer, got ${JSON.stringify(nestedBs)}`);
  }
  const off = s['nested_offset'];
  if (nestedBs !== undefined && typeof off !== 'number') throw new Error(`${where}: nested_offset must be a number, got ${JSON.stringify(off)}`);
  return {
    quant_type: 'nf4', blocksize: bs, dtype: typeof s['dtype'] === 'string' ? (s['dtype'] as string) : 'float32',
    shape: shape as number[], nested_blocksize: nestedBs as number | undefined, nested_offset: off as number | undefined,
  };
}

/** Reads the NF4 weight stored under `weightName` (e.g. "model.layers.0.self_attn.q_proj.weight"). */
export function readNf4Weight(ckpt: Checkpoint, weightName: string): Nf4Weight {
  const st = readQuantState(ckpt, weightName);
  const numel = st.shape[0]! * st.shape[1]!;
  const blocks = nf4BlockCount(numel, st.blocksize);
  const expect = (name: string, dtype: string, numelWanted: number): void => {
    if (!ckpt.has(name)) throw new Error(`${ckpt.info(weightName).file}: missing tensor '${name}' of the 4-bit weight '${weightName}'`);
    const info = ckpt.info(name);
    if (info.dtype !== dtype || info.numel !== numelWanted) {
      throw new Error(`${info.file}: tensor '${name}' is ${info.dtype} with ${info.numel} values, expected ${dtype} with ${numelWanted}`);
    }
  };
  expect(weightName, 'U8', Math.ceil(numel / 2));
  expect(`${weightName}.quant_map`, 'F32', 16);
  const codes = ckpt.readRaw(weightName);
  const code = ckpt.readFloat32(`${weightName}.quant_map`);
  const base = { shape: st.shape, numel, blockSize: st.blocksize, codes, code, sourceDtype: st.dtype };
  if (st.nested_blocksize === undefined) {
    expect(`${weightName}.absmax`, 'F32', blocks);
    return { ...base, absmax: ckpt.readFloat32(`${weightName}.absmax`), nested: null };
  }
  const nb = Math.ceil(blocks / st.nested_blocksize);
  expect(`${weightName}.absmax`, 'U8', blocks);
  expect(`${weightName}.nested_absmax`, 'F32', nb);
  expect(`${weightName}.nested_quant_map`, 'F32', 256);
  return {
    ...base,
    absmax: null,
    nested: {
      qabsmax: ckpt.readRaw(`${weightName}.absmax`),
      nestedAbsmax: ckpt.readFloat32(`${weightName}.nested_absmax`),
      nestedCode: ckpt.readFloat32(`${weightName}.nested_quant_map`),
      nestedBlockSize: st.nested_blocksize,
      offset: Math.fround(st.nested_offset!),
    },
  };
}
