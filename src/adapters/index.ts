/** Surgery passes: composable model-to-model changes behind applySurgery, and their registry. */
export type { SurgeryPass, SurgeryContext, SurgeryReport, SurgeryStepReport } from './surgery-pass.js';
export { moeBlocksWithPaths } from './surgery-pass.js';
export { applySurgery, batchLoss, formatSurgeryReport, type SurgeryOptions, type SurgeryResult } from './apply-surgery.js';
export { nullExpertsPass, tileGateRows, stepZeroTrueExperts, stepZeroTrueExpertRange, type NullExpertsOptions } from './null-experts.js';
export { ternaryPass, ternaryGate, TERNARY_INIT_STD, type TernaryOptions } from './ternary.js';
export { loraPass, moLoraPass } from './lora-passes.js';
export { decomposeFfnPass, denseThresholdRouter, type DecomposeOptions } from './decompose-ffn.js';
export {
  SURGERY_PASSES, registerSurgeryPass, createSurgeryPass, parseSurgerySpec,
  type SurgeryPassEntry, type SpecValue,
} from './registry.js';
