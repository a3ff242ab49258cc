/** The options every training run takes, fine-tuning (finetune.ts) and pretraining (pretrain.ts) alike. */
import type { WeightedAuxLoss } from '../losses/aux-loss.js';
import type { ProgressSink } from './progress.js';
import type { Trainer, TrainerConfig } from './trainer.js';

export interface TrainRunOptions {
  runDir: string;
  /** Sequences per optimizer micro-batch. */
  batchSize: number;
  /** Data-order seed (default: trainer seed). */
  dataSeed?: number;
  trainer: TrainerConfig;
  auxLosses?: readonly WeightedAuxLoss[];
  /** Evaluation (during training and at the end): sequences per batch (default 8) and batches (default: all). */
  evalBatchSize?: number;
  evalMaxBatches?: number | null;
  /** Continue from the newest checkpoint in runDir. */
  resume?: boolean;
  progress?: ProgressSink;
  /** The caller's resolved recipe (saved with checkpoints and in the run's summary). */
  extra?: unknown;
  /** Called with the trainer before it runs (the CLI installs its Ctrl-C handler here). */
  onTrainer?: (trainer: Trainer) => void;
}
