/**
 * Fine-grained FP8 checkpoints (transformers' `quantization_config: {quant_method: "fp8", fmt: "e4m3",
 * weight_block_size: [bo, bi]}`, the format DeepSeek-V3, Kimi-K2 and the Qwen3 "-FP8" releases ship in): a
 * linear weight W [out, in] is stored as float8_e4m3fn values Q with a float32 tensor `<name>_scale_inv`
 * [ceil(out / bo), ceil(in / bi)], one scale per bo x bi block, and
 *
 *   W[r, c] = Q[r, c] * scale_inv[floor(r / bo), floor(c / bi)]
 *
 * (DeepSeek-V3's `weight_dequant`; transformers' dequantisation on CPU computes the same product in float32).
 * We read such weights dequantised to float32 (a float8 value is exact in f32, so the one rounding is the
 * product's, as in torch) and never write FP8.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileFormatError } from './file-format-error.js';
import { readJsonObject } from './json-object-file.js';

/** The block-scale tensor of a float8 weight: `<name>_scale_inv`. */
export const FP8_SCALE_SUFFIX = '_scale_inv';

/** transformers' FineGrainedFP8Config default block. */
export const DEFAULT_FP8_BLOCK: readonly [number, number] = [128, 128];

/**
 * The [rows, columns] block of a model directory's fine-grained FP8 quantization_config, or null when
 * config.json is absent or declares no `quant_method: "fp8"` (validating the other keys is the config's job).
 */
export function fp8BlockOfDir(dir: string): readonly [number, number] | null {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return null;
  const q = readJsonObject(file)['quantization_config'];
  if (typeof q !== 'object' || q === null || (q as Record<string, unknown>)['quant_method'] !== 'fp8') return null;
  const b = (q as Record<string, unknown>)['weight_block_size'];
  if (b === undefined || b === null) return DEFAULT_FP8_BLOCK;
  if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => Number.isInteger(x) && (x as number) > 0)) {
    throw new Error(`${file}: field 'quantization_config.weight_block_size': expected two positive integers [rows, columns], got ${JSON.stringify(b)}`);
  }
  return [b[0] as number, b[1] as number];
}

/**
 * Multiplies a dequantised float8 weight [rows, cols] (float32 values, in place) by its block scales
 * [ceil(rows / bo), ceil(cols / bi)]. `file` and `name` (the weight's) word the errors.
 */
export function applyFp8BlockScales(
  values: Float32Array, shape: readonly number[], scales: Float32Array, scaleShape: readonly number[],
  block: readonly [number, number], file: string, name: string,
): void {
  if (shape.length !== 2) throw new FileFormatError(file, `a block-scaled float8 tensor must be 2-D [out, in], got shape [${shape.join(', ')}]`, name);
  const [rows, cols] = shape as [number, number];
  const [bo, bi] = block;
  const sr = Math.ceil(rows / bo);
  const sc = Math.ceil(cols / bi);
  if (scaleShape.length !== 2 || scaleShape[0] !== sr || scaleShape[1] !== sc) {
    throw new FileFormatError(file, `block scales of shape [${scaleShape.join(', ')}], expected [${sr}, ${sc}] (blocks of ${bo} x ${bi} over [${rows}, ${cols}])`, `${name}${FP8_SCALE_SUFFIX}`);
  }
  for (let r = 0; r < rows; r++) {
    const srow = Math.floor(r / bo) * sc;
    const row = r * cols;
    for (let c0 = 0, j = 0; c0 < cols; c0 += bi, j++) {
      const s = scales[srow + j]!;
      const end = Math.min(c0 + bi, cols);
      // the double product of two float32 values is exact, so storing it rounds once, as a float32 multiply
      for (let c = c0; c < end; c++) values[row + c] = values[row + c]! * s;
    }
  }
}
