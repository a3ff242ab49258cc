/**
 * The two quantisation code books of QLoRA-style 4-bit storage, as bitsandbytes defines them:
 *
 *  - NF4 (QLoRA §3, bitsandbytes `get_4bit_type('nf4')`): 16 values in [-1, 1], the quantiles of a
 *    standard normal normalised so the extremes are exactly -1 and 1, with an exact 0. A weight w in
 *    a block with absolute maximum m is stored as the index of the code value nearest to w / m.
 *  - The signed 8-bit "dynamic" map (bitsandbytes `create_dynamic_map(signed=True)`), used by double
 *    quantisation for the block absmax values: 7 decades 10^-6 .. 10^0, decade i holding 2^i
 *    linearly spaced fraction midpoints in [0.1, 1], both signs, plus 0 and 1 (256 values, sorted).
 *
 * Both code books are also written next to every quantised tensor (`quant_map`, `nested_quant_map`),
 * so a file stays readable whatever these constants become.
 */

/** The NF4 code book (SPEC §5), float32, ascending. Index 7 is 0. */
export const NF4_CODE: Float32Array = Float32Array.from([
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1,
]);

/** Index of NF4's zero (what an all-zero block stores). */
export const NF4_ZERO_INDEX = 7;

/**
 * Decision thresholds between adjacent NF4 values (their midpoints, in float32): a normalised
 * value x maps to the number of thresholds it is strictly greater than, so an exact midpoint goes
 * to the lower code (as bitsandbytes' `dQuantizeNF4` decision tree does).
 */
export const NF4_THRESHOLDS: Float32Array = (() => {
  const t = new Float32Array(15);
  for (let i = 0; i < 15; i++) t[i] = (NF4_CODE[i]! + NF4_CODE[i + 1]!) / 2;
  return t;
})();

/** NF4 index of a normalised value x (in [-1, 1]; NaN maps to the zero code). */
export function nf4Index(x: number): number {
  if (!(x === x)) return NF4_ZERO_INDEX;
  // binary search over the 15 sorted thresholds: count of thresholds < x
  let lo = 0;
  let hi = 15;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x > NF4_THRESHOLDS[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The signed 8-bit dynamic code book of bitsandbytes (256 float32 values, ascending). */
export function createDynamicMap(): Float32Array {
  const f = Math.fround;
  const values: number[] = [];
  const maxExponentBits = 7;
  for (let i = 0; i < maxExponentBits; i++) {
    const items = 2 ** i + 1; // boundaries of decade i
    const scale = f(10 ** (-(maxExponentBits - 1) + i));
    const bounds: number[] = [];
    for (let j = 0; j < items; j++) bounds.push(f(0.1 + (0.9 * j) / (items - 1)));
    for (let j = 0; j + 1 < items; j++) {
      const mean = f(f(bounds[j]! + bounds[j + 1]!) / 2);
      values.push(f(scale * mean), f(-scale * mean));
    }
  }
  values.push(0, 1);
  if (values.length !== 256) throw new Error(`createDynamicMap: built ${values.length} values, expected 256`);
  return Float32Array.from(values.sort((a, b) => a - b));
}

/** The dynamic map, built once. */
export const DYNAMIC_CODE: Float32Array = createDynamicMap();

/**
 * Index of the value of a sorted code book nearest to x (ties to the lower index; NaN to the
 * entry nearest 0).
 */
export function nearestIndex(code: Float32Array, x: number): number {
  if (!(x === x)) x = 0;
  let lo = 0;
  let hi = code.length - 1;
  if (x <= code[lo]!) return lo;
  if (x >= code[hi]!) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return x - code[lo]! <= code[hi]! - x ? lo : hi;
}
