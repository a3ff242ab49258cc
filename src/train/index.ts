/** The trainer (fine-tuning and pretraining), its optimizer, schedules, checkpoints, metrics and progress. */
export { AdamW, type AdamWOptions, type AdamWState } from './adamw.js';
export { createLrSchedule, type LrSchedule, type LrScheduleOptions } from './lr-schedule.js';
export { selectTrainable, TRAINABLE_PRESETS, type TrainableSpec } from './trainable.js';
export { packedBatchSource, countTargets, type TrainBatch, type TrainBatchSource, type PackedSourceOptions } from './data-source.js';
export { evaluateLoss, type EvalSet, type EvalResult } from './evaluate.js';
export {
  writeTrainCheckpoint, readTrainCheckpoint, listCheckpoints, latestCheckpoint, pruneCheckpoints, removeStaleCheckpointTemps,
  incompleteCheckpoints, missingCheckpointFiles, removeCheckpointDir, CHECKPOINT_FILES, checkpointsDir, checkpointDirName, TRAINER_STATE_FILE, PARAMS_FILE, OPTIMIZER_FILE,
  type CheckpointContent, type TrainerStateJson, type LoadedTrainCheckpoint,
} from './checkpoint.js';
export { parseTrainerState, TrainerStateSchema, type TrainerStateParsed } from './trainer-state-schema.js';
export { MetricsWriter, readMetrics, METRICS_FILE, type StepMetrics } from './metrics.js';
export { createProgress, silentProgress, formatStepLine, formatDuration, type ProgressSink, type ProgressOptions } from './progress.js';
export { installStopSignal, type Stoppable } from './stop-signal.js';
export {
  Trainer, TrainingDivergedError, type TrainerConfig, type TrainerOptions, type TrainerHooks, type TrainResult, type RandomStateful,
} from './trainer.js';
export { unigramBaseline, type UnigramResult } from './unigram.js';
export { pretrain, type PretrainOptions, type PretrainResult, type PretrainMetrics, type PretrainCorpus } from './pretrain.js';
export { finetune, packFiles, type FinetuneOptions, type FinetuneResult, type PackFilesOptions } from './finetune.js';
export type { TrainRunOptions } from './run-options.js';
