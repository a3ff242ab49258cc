/** LoRA and Mo-LoRA layers, target selection and freezing (importing this registers them with the model builder). */
import './build-extensions.js';

export { LoraLinear, loraScaling, kaimingUniformA, checkLoraHyper, type LoraHyper } from './lora-linear.js';
export { MoLoraLinear, LoraExpert, routerInit, type MoLoraHyper } from './mo-lora-linear.js';
export {
  ALL_LINEAR, parseTargets, targetsText, pathSelected, layerIndexOf, candidateLinears, selectLinears,
  isAdapterWrapper, noMatchError, type TargetPatterns, type TargetSelection,
} from './target-match.js';
export { applyLora, wrapLora, loraConfigEntry, type LoraOptions, type AppliedAdapters } from './apply-lora.js';
export {
  applyMoLora, wrapMoLora, addMoLoraNullExperts, moLoraLayers, moLoraRouter, moLoraSettings, checkMoLoraCounts,
  MO_LORA_DEFAULT_TARGETS,
  type MoLoraOptions, type MoLoraSettings,
} from './apply-mo-lora.js';
export { trainableParameters, freezeAllButAdapters, adapterTensors, countParameters } from './freeze.js';
// Config editing lives in src/models/config-edit.ts (surgery of any kind edits configs); re-exported
// here for code written against the old location.
export { editModelConfig, setModelConfig, modelConfigJson, moeTuneOf } from '../models/config-edit.js';
