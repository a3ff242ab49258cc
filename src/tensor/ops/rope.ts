import { kernelsFor } from '../backends/registry.js';
import type { FloatArray } from '../backend.js';
import { shapeStr } from '../dtype.js';
import { record } from '../tape.js';
import { Tensor } from '../tensor.js';
import { assertFloat } from './shape-utils.js';

export interface RopeTables {
  cos: FloatArray;
  sin: FloatArray;
}

/**
 * Frequencies other than 1 / theta^(2i/Dh) (scaled rope types: linear, llama3, yarn, dynamic NTK):
 * inv_freq [Dh/2] in float32, a factor on cos and sin (yarn's attention factor; 1 otherwise), and a
 * key naming them for the table cache.
 */
export interface RotaryFrequencies {
  key: string;
  invFreq: Float32Array;
  scaling: number;
}

const cache = new Map<string, { f32: RopeTables; f64: RopeTables }>();

/**
 * cos / sin tables [T, Dh/2] for positions offset..offset+T-1 (or explicit positions), computed
 * as transformers does on CPU: inv_freq = 1 / theta^(2i/Dh) in float32, angle = pos * inv_freq in
 * float32, then cos / sin of that float32 angle.
 */
export function ropeTables(theta: number | RotaryFrequencies, Dh: number, positions: Int32Array | { offset: number; length: number }): { f32: RopeTables; f64: RopeTables } {
  const half = Dh >> 1;
  const isRange = !(positions instanceof Int32Array);
  const freqKey = typeof theta === 'number' ? `${theta}` : theta.key;
  const key = isRange ? `${freqKey}:${Dh}:${positions.offset}:${positions.length}` : '';
  if (isRange) {
    const hit = cache.get(key);
    if (hit) return hit;
  }
  const T = isRange ? positions.length : positions.length;
  const c32 = new Float32Array(T * half);
  const s32 = new Float32Array(T * half);
  let invFreq: Float32Array;
  let scaling = 1;
  if (typeof theta === 'number') {
    invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / Dh)));
  } else {
    if (theta.invFreq.length !== half) throw new Error(`rope: ${theta.invFreq.length} frequencies for head_dim ${Dh} (expected ${half})`);
    invFreq = theta.invFreq;
    scaling = theta.scaling;
  }
  for (let t = 0; t < T; t++) {
    const pos = isRange ? positions.offset + t : positions[t]!;
    for (let i = 0; i < half; i++) {
      const ang = Math.fround(pos * invFreq[i]!);
      c32[t * half + i] = scaling === 1 ? Math.cos(ang) : Math.fround(Math.fround(Math.cos(ang)) * scaling);
      s32[t * half + i] = scaling === 1 ? Math.sin(ang) : Math.fround(Math.fround(Math.sin(ang)) * scaling);
    }
  }
  const tables = { f32: { cos: c32, sin: s32 }, f64: { cos: Float64Array.from(c32), sin: Float64Array.from(s32) } };
  if (isRange) {
    if (cache.size > 64) cache.clear();
    cache.set(key, tables);
  }
  return tables;
}

/**
 * Rotary position embedding (rotate_half form) on x [B, T, H, Dh], with frequencies 1 / theta^(2i/Dh)
 * or the given ones.
 * `positions` is either the first position (an offset, for KV-cache decoding) or one position per
 * time step.
 */
export function rope(x: Tensor, theta: number | RotaryFrequencies, positions: number | Int32Array = 0): Tensor {
  assertFloat('rope', x);
  if (x.rank !== 4) throw new Error(`rope: input has shape ${shapeStr(x.shape)}, expected [B, T, heads, head_dim]`);
  const [B, T, H, Dh] = x.shape as [number, number, number, number];
  if (Dh % 2 !== 0) throw new Error(`rope: head_dim ${Dh} must be even`);
  if (positions instanceof Int32Array && positions.length !== T) throw new Error(`rope: ${positions.length} positions for ${T} time steps`);
  const all = ropeTables(theta, Dh, typeof positions === 'number' ? { offset: positions, length: T } : positions);
  const tab = x.dtype === 'float64' ? all.f64 : all.f32;
  const k = kernelsFor(x);
  const y = Tensor.empty(x.shape, x.dtype);
  k.rope(x.f, tab.cos, tab.sin, B, T, H, Dh, false, y.f);
  record('rope', [x], [y], ([dy], ctx) => {
    if (!dy) return;
    ctx.write(0, (out) => k.rope(dy.f, tab.cos, tab.sin, B, T, H, Dh, true, out));
  });
  return y;
}
