/** Conversions: XMoE decomposition, LoRA merge, PEFT adapter export / import, exported jobs' data and results. */
export { decomposeFfn, type DecomposeResult } from './decompose-ffn.js';
export { mergeLora, saveMergedModel } from './merge-lora.js';
export { exportPeftAdapter, importPeftAdapter, peftAdapterBlocker, fullyTrainedModules, type PeftExportOptions, type PeftExportResult, type PeftImportResult } from './peft-adapter.js';
export {
  peftAdapterConfig, parsePeftAdapterConfig, peftTargetModules, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, PEFT_KEY_PREFIX,
  PEFT_FORMAT_VERSION, type PeftConfigFields,
} from './peft-config.js';
export { modelWeightSource, cloneModel } from './model-source.js';
export { writeJobData, trainOrder, JOB_DATA_FORMAT, type JobDataIndex, type JobDataOptions } from './job-data.js';
export { importJob, type ImportJobOptions, type ImportJobResult } from './import-job.js';
