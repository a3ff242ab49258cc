/** Conversions: XMoE decomposition, LoRA merge, PEFT adapter export / import. */
export { decomposeFfn, type DecomposeResult } from './decompose-ffn.js';
export { mergeLora, saveMergedModel } from './merge-lora.js';
export { exportPeftAdapter, importPeftAdapter, type PeftExportOptions, type PeftExportResult, type PeftImportResult } from './peft-adapter.js';
export {
  peftAdapterConfig, parsePeftAdapterConfig, peftTargetModules, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, PEFT_KEY_PREFIX,
  PEFT_FORMAT_VERSION, type PeftConfigFields,
} from './peft-config.js';
export { modelWeightSource, cloneModel } from './model-source.js';
