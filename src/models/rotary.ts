/**
 * Rotary position embedding frequencies for the rope types transformers' Llama supports
 * (modeling_rope_utils.py): default, linear, dynamic (NTK), llama3 and yarn. Config: the old
 * `rope_scaling` object and / or transformers 5's `rope_parameters` (with `rope_theta` inside or at
 * the top level). Each computation follows transformers' float32 arithmetic step by step
 * (Math.fround after every float32 op) so the cos / sin tables match its to the last bit or so.
 * A rope type or key we do not implement (longrope, partial_rotary_factor < 1) is a clear error.
 */
import type { RotaryFrequencies } from '../tensor/index.js';

export type RopeConfig =
  | { type: 'default'; theta: number }
  | { type: 'linear'; theta: number; factor: number }
  | { type: 'dynamic'; theta: number; factor: number; maxPositionEmbeddings: number }
  | { type: 'llama3'; theta: number; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | {
    type: 'yarn'; theta: number; factor: number; originalMaxPositionEmbeddings: number;
    attentionFactor: number; betaFast: number; betaSlow: number; truncate: boolean;
  };

const f = Math.fround;

function num(params: Record<string, unknown>, key: string, where: string, dflt?: number): number {
  const v = params[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new Error(`${where}: field 'rope_parameters.${key}' is missing (needed by rope type '${String(params['rope_type'] ?? params['type'])}')`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: field 'rope_parameters.${key}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads rope_theta / rope_scaling / rope_parameters of a config.json object (defaults applied). */
export function readRope(c: Record<string, unknown>, headDim: number, maxPositionEmbeddings: number, defaultTheta: number, where: string): RopeConfig {
  const obj = (k: string): Record<string, unknown> => {
    const v = c[k];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: field '${k}' must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  };
  const p: Record<string, unknown> = { ...obj('rope_scaling'), ...obj('rope_parameters') };
  const topTheta = typeof c['rope_theta'] === 'number' ? (c['rope_theta'] as number) : undefined;
  const theta = num(p, 'rope_theta', where, topTheta ?? defaultTheta);
  if (!(theta > 0)) throw new Error(`${where}: field 'rope_theta' must be positive, got ${theta}`);
  const type = String(p['rope_type'] ?? p['type'] ?? 'default');
  const partial = p['partial_rotary_factor'] ?? c['partial_rotary_factor'];
  if (partial !== undefined && partial !== null && partial !== 1) {
    throw new Error(`${where}: unsupported config: partial_rotary_factor ${JSON.stringify(partial)} (only 1 is implemented)`);
  }
  const origMax = (): number => num(p, 'original_max_position_embeddings', where,
    typeof c['original_max_position_embeddings'] === 'number' ? (c['original_max_position_embeddings'] as number) : maxPositionEmbeddings);
  switch (type) {
    case 'default':
      return { type, theta };
    case 'linear':
      return { type, theta, factor: num(p, 'factor', where) };
    case 'dynamic':
      return { type, theta, factor: num(p, 'factor', where), maxPositionEmbeddings };
    case 'llama3':
      return {
        type, theta, factor: num(p, 'factor', where), lowFreqFactor: num(p, 'low_freq_factor', where),
        highFreqFactor: num(p, 'high_freq_factor', where), originalMaxPositionEmbeddings: origMax(),
      };
    case 'yarn': {
      const orig = origMax();
      const factor = p['factor'] === undefined || p['factor'] === null ? maxPositionEmbeddings / orig : num(p, 'factor', where);
      const mscaleOf = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      let attentionFactor = typeof p['attention_factor'] === 'number' ? (p['attention_factor'] as number) : null;
      if (attentionFactor === null) {
        const ms = typeof p['mscale'] === 'number' ? (p['mscale'] as number) : 0;
        const msAll = typeof p['mscale_all_dim'] === 'number' ? (p['mscale_all_dim'] as number) : 0;
        attentionFactor = ms && msAll ? mscaleOf(factor, ms) / mscaleOf(factor, msAll) : mscaleOf(factor);
      }
      return {
        type, theta, factor, originalMaxPositionEmbeddings: orig, attentionFactor,
        betaFast: (p['beta_fast'] as number | undefined) || 32, betaSlow: (p['beta_slow'] as number | undefined) || 1,
        truncate: p['truncate'] === undefined ? true : Boolean(p['truncate']),
      };
    }
    default:
      throw new Error(`${where}: unsupported config: rope type '${type}' (implemented: default, linear, dynamic, llama3, yarn)`);
  }
}

/** inv_freq = 1 / base^(2i/dim) in float32, as transformers computes it. */
function baseInvFreq(base: number, dim: number): Float32Array {
  const half = dim >> 1;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / f(Math.pow(base, f((2 * i) / dim)));
  return out;
}

/**
 * The rotary frequencies for a forward whose positions reach `seqLen - 1`, or the plain theta
 * (number) when the rope is the default one (the op's own, cached, table).
 */
export function rotaryFrequencies(rope: RopeConfig, dim: number, seqLen: number): number | RotaryFrequencies {
  switch (rope.type) {
    case 'default':
      return rope.theta;
    case 'linear': {
      const inv = baseInvFreq(rope.theta, dim).map((x) => f(x / rope.factor));
      return { key: `linear:${rope.theta}:${rope.factor}:${dim}`, invFreq: inv, scaling: 1 };
    }
    case 'dynamic': {
      // transformers recomputes inv_freq once the sequence grows past max_position_embeddings:
      // base' = base * (factor * L / max - (factor - 1))^(dim / (dim - 2)), in float32 (L = max(seqLen, max))
      if (seqLen <= rope.maxPositionEmbeddings) return rope.theta;
      const L = seqLen;
      const base = f(rope.theta * f(Math.pow(f(f(f(rope.factor * L) / rope.maxPositionEmbeddings) - (rope.factor - 1)), dim / (dim - 2))));
      return { key: `dynamic:${base}:${dim}`, invFreq: baseInvFreq(base, dim), scaling: 1 };
    }
    case 'llama3': {
      const inv = baseInvFreq(rope.theta, dim);
      const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: old } = rope;
      const lowWavelen = old / lo;
      const highWavelen = old / hi;
      const out = new Float32Array(inv.length);
      for (let i = 0; i < inv.length; i++) {
        const wavelen = f((2 * Math.PI) / inv[i]!);
        let x = wavelen > lowWavelen ? f(inv[i]! / factor) : inv[i]!;
        if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
          const s = f(f(f(old / wavelen) - lo) / (hi - lo));
          x = f(f(f(f(1 - s) * x) / factor) + f(s * x));
        }
        out[i] = x;
      }
      return { key: `llama3:${rope.theta}:${factor}:${lo}:${hi}:${old}:${dim}`, invFreq: out, scaling: 1 };
    }
    case 'yarn': {
      const { theta: base, factor } = rope;
      const half = dim >> 1;
      const corrDim = (rot: number): number => (dim * Math.log(rope.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(base));
      let low = corrDim(rope.betaFast);
      let high = corrDim(rope.betaSlow);
      if (rope.truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001;
      const out = new Float32Array(half);
      for (let i = 0; i < half; i++) {
        const posFreq = f(Math.pow(base, f((2 * i) / dim)));
        const extrap = f(1 / posFreq);
        const interp = f(1 / f(factor * posFreq));
        const ramp = Math.min(1, Math.max(0, f(f(i - low) / f(high - low))));
        const ef = f(1 - ramp);
        out[i] = f(f(interp * f(1 - ef)) + f(extrap * ef));
      }
      return { key: `yarn:${base}:${factor}:${low}:${high}:${rope.attentionFactor}:${dim}`, invFreq: out, scaling: rope.attentionFactor };
    }
  }
}

/** rope_parameters for config.json (transformers 5 form). */
export function ropeToJson(rope: RopeConfig): Record<string, unknown> {
  const base = { rope_type: rope.type, rope_theta: rope.theta };
  switch (rope.type) {
    case 'default':
      return base;
    case 'linear':
    case 'dynamic':
      return { ...base, factor: rope.factor };
    case 'llama3':
      return { ...base, factor: rope.factor, low_freq_factor: rope.lowFreqFactor, high_freq_factor: rope.highFreqFactor, original_max_position_embeddings: rope.originalMaxPositionEmbeddings };
    case 'yarn':
      return {
        ...base, factor: rope.factor, original_max_position_embeddings: rope.originalMaxPositionEmbeddings, attention_factor: rope.attentionFactor,
        beta_fast: rope.betaFast, beta_slow: rope.betaSlow, truncate: rope.truncate,
      };
  }
}
