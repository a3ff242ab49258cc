/** Training recipes: the schema, loading (extends, tiny variant, --set), and running them. */
export { RecipeSchema, WeightScheduleSchema, AuxLossSchema, RECIPE_META_KEYS, type Recipe, type AuxLossEntry } from './schema.js';
export { loadRecipe, listRecipes, findRecipeFile, RECIPES_DIR, type LoadRecipeOptions, type ResolvedRecipe, type RecipeVariant } from './load-recipe.js';
export { parseSetOverride, applySetOverride, type SetOverride } from './set-override.js';
export { compileRecipe, RecipeKeyError, auxLossOf, routerSpecOf, loraTargetsOf, pretrainModelConfig, type CompiledRecipe } from './compile.js';
export { deepMerge } from './merge.js';
export { checkRecipeOnResume, diffJson, TRAJECTORY_NEUTRAL, RECIPE_CHANGES_FILE, type RecipeChange, type RecipeChangeCheck } from './recipe-change.js';
export { writeResolvedRecipe, recipeYamlText, recipeExtra, recipeSource, RECIPE_YAML, RECIPE_JSON, type RecipeSource } from './write-recipe.js';
export { trainerConfigOf, stepsOf, seedRunDir } from './trainer-config.js';
export { brownSamples, writeBrownSamplesJsonl, type BrownSampleOptions } from './brown-samples.js';
export { sweepPerplexity, packedRows, type SweepRun } from './eval-sweep.js';
export { runPretrainRecipe, type RecipeRunOptions, type PretrainRecipeResult, type PretrainSeedResult } from './run-pretrain.js';
export { runFinetuneRecipe, recordedRecipe, type FinetuneRunOptions, type FinetuneRecipeResult, type FinetuneSeedResult } from './run-finetune.js';
export { exportJob, JOB_TEMPLATE_DIR, type ExportJobOptions, type ExportJobResult, type JobSpec } from './export-job.js';
export { buildFinetuneModel, prepareFinetune, type FinetuneSetupOptions, type PreparedFinetune } from './finetune-setup.js';
export { preflightFinetune, requireDataFile, type PreflightOptions, type PreflightReport } from './preflight.js';
export { adaptBase, adaptLora, type AdaptOptions } from './adapt-model.js';
