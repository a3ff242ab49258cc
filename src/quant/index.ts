/** NF4 4-bit quantisation (QLoRA): code books, blockwise quantisation, the 4-bit linear layer and its GEMM, model conversion and I/O. */
export { NF4_CODE, NF4_THRESHOLDS, NF4_ZERO_INDEX, DYNAMIC_CODE, createDynamicMap, nf4Index, nearestIndex } from './codebooks.js';
export {
  NF4_BLOCK_SIZE, NESTED_BLOCK_SIZE, quantizeNf4, quantizeNf4Js, quantizeNf4Stored, quantizeScalesJs, type StoredFloats, dequantizeNf4, dequantizeRange, decodeScales, nf4Scales, nf4CodeAt,
  nf4BlockCount, nf4StorageBytes, quantizeScales, type Nf4Weight, type Nf4NestedScales, type QuantizeNf4Options,
} from './nf4.js';
export { nf4Gemm, nf4GemmGrouped, tileRows, setNf4TileElements, TILE_ELEMENTS, type NativeNf4Gemm } from './nf4-gemm.js';
export { nf4Linear } from './nf4-linear-op.js';
export { nf4GroupedLinear } from './nf4-grouped-linear-op.js';
export { Nf4Linear } from './nf4-linear.js';
export { Bf16Linear } from './bf16-linear.js';
export { Bf16Embedding } from './bf16-embedding.js';
export { bf16Linear, widenBf16Rows, PANEL_ROWS } from './bf16-linear-op.js';
export {
  quantizeModel, dequantizeModel, quantizedModelStats, nf4Sites, bf16Sites, bf16Embeddings, layerSites, type Nf4Site, type LayerSite, isQuantTarget, matchesPattern, DEFAULT_QUANT_SKIP,
  type ModulePattern, type QuantizeModelOptions, type QuantizeModelResult,
} from './quantize-model.js';
export { buildSkeleton, zeroViews, zeroWeightSource, type Skeleton } from './skeleton.js';
export { nf4Tensors, nf4TensorNames, readNf4Weight, readQuantState, quantStateJson, pythonFloatRepr, QUANT_STATE_SUFFIX } from './quant-state-io.js';
export {
  loadModelQuantized, saveQuantizedModel, isQuantizedModelDir, quantizationConfigOf, quantizationConfigJson,
  quantizedStateTensors, checkpointByteBreakdown, type LoadQuantizedOptions, type LoadedQuantizedModel, type SaveQuantizedOptions,
} from './load-quantized.js';
