/**
 * One trainer for fine-tuning and pretraining.
 *
 * A step: take `gradAccumSteps` micro-batches; for each, in its own memory scope, run the model in
 * training mode, compute the LM loss (mean over target tokens, weighted by the micro-batch's share
 * of the step's targets, so accumulation equals one big batch) plus each auxiliary loss times its
 * scheduled weight (divided by the number of micro-batches), and backpropagate. Then: the global
 * gradient norm over the trainable parameters, the NaN / inf guard, clipping (scale =
 * maxNorm / (norm + 1e-6) when the norm exceeds maxNorm, as torch's clip_grad_norm_), and one AdamW
 * update at the scheduled learning rate. The whole step runs inside one withScope.
 *
 * Reproducibility: the model's initial weights are the caller's (seeded createModel / a loaded
 * checkpoint); data order comes from the batch source's seed; dropout and random routers draw from
 * the trainer's `forward` Rng (seeded from `seed`); every one of these positions is saved in the
 * checkpoints, and `resume()` restores them, so 10 steps + resume + 10 steps give the same losses
 * and bit-identical weights as 20 steps.
 *
 * Stopping: `requestStop()` (the SIGINT helper calls it) ends the run after the current step with a
 * checkpoint. A non-finite loss or gradient norm stops the run with TrainingDivergedError, before
 * any update, leaving the last good checkpoint as the newest one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WeightedAuxLoss } from '../losses/aux-loss.js';
import { IGNORE_INDEX, type CausalLM } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import { statefulRouters } from '../models/stateful-routers.js';
import type { RandomStateful } from '../routers/router.js';
import { backward, ops, Rng, Tensor, withScope, zeroGrad } from '../tensor/index.js';
import { writeJsonAtomic } from '../io/index.js';
import { AdamW } from './adamw.js';
import {
  incompleteCheckpoints, latestCheckpoint, readTrainCheckpoint, removeCheckpointDir, removeStaleCheckpointTemps, writeTrainCheckpoint, type CheckpointContent,
} from './checkpoint.js';
import { countTargets, type TrainBatch, type TrainBatchSource } from './data-source.js';
import { evaluateLoss, type EvalResult, type EvalSet } from './evaluate.js';
import { createLrSchedule, type LrSchedule } from './lr-schedule.js';
import { MetricsWriter, type StepMetrics } from './metrics.js';
import { silentProgress, type ProgressSink } from './progress.js';
import { selectTrainable, TRAINABLE_PRESETS } from './trainable.js';

/** The resolved trainer settings (plain JSON; saved with every checkpoint). */
export interface TrainerConfig {
  /** Optimizer steps of the whole run. */
  steps: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccumSteps?: number;
  /** Peak learning rate. */
  lr: number;
  /** Warmup steps (default: round(warmupRatio * steps)). */
  warmupSteps?: number;
  /** Default 0.1. */
  warmupRatio?: number;
  /** Cosine floor as a fraction of the peak (default 0.1). */
  minLrRatio?: number;
  /** AdamW (defaults 0.9 / 0.95 / 1e-8 / 0.1, paper 000 A.2). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Parameters without weight decay (presets of trainable.ts or regex sources; default norms and biases). */
  noDecay?: string[];
  /** Global-norm clipping threshold, or null for none (default 1.0). */
  clipGradNorm?: number | null;
  /** Trainable presets / regexes (see trainable.ts; default ['all']). */
  trainable?: string[];
  frozen?: string[];
  /**
   * Activation checkpointing: every decoder layer keeps only its output for the backward, which
   * recomputes it (src/models/layer-checkpoint.ts): activation memory of one layer instead of all, for
   * about one more forward of compute; results identical (default false).
   */
  gradientCheckpointing?: boolean;
  /** Evaluate every N steps (0: only at the end; default 0). */
  evalEvery?: number;
  /** Checkpoint every N steps (0: only at the end / on stop; default 0). */
  checkpointEvery?: number;
  /** Checkpoints kept (default 3). */
  keepCheckpoints?: number;
  /** 'full' (all parameters) or 'trainable' (default: 'full' when everything trains, else 'trainable'). */
  checkpointContent?: CheckpointContent;
  /** Seed of the forward-pass RNG (dropout, random routers; default 0). */
  seed?: number;
  /** Steps per epoch for per-epoch aux-weight schedules (default: from the batch source). */
  stepsPerEpoch?: number | null;
}

export interface TrainerHooks {
  /** After each step's metrics are written (tests; a stop requested here applies to this step). */
  afterStep?: (m: StepMetrics, trainer: Trainer) => void;
  /** Inside a checkpoint write, after the parameters and before the optimizer state (tests). */
  midCheckpointWrite?: (tmpDir: string, step: number) => void | Promise<void>;
}

export interface TrainerOptions {
  model: CausalLM;
  config: TrainerConfig;
  train: TrainBatchSource;
  eval?: EvalSet | null;
  auxLosses?: readonly WeightedAuxLoss[];
  runDir: string;
  progress?: ProgressSink;
  hooks?: TrainerHooks;
  /** The caller's resolved recipe, saved with checkpoints (plain JSON). */
  extra?: unknown;
  /** Warnings (an incomplete checkpoint skipped on resume); default: `moe-tune: warning: ...` on stderr. */
  onWarning?: (line: string) => void;
}

export interface TrainResult {
  /** Steps completed (of config.steps). */
  step: number;
  stopped: boolean;
  lastCheckpoint: string | null;
  lastEval: EvalResult | null;
  metricsPath: string;
  /** Loss of the first and last step of this call. */
  firstLoss: number | null;
  lastLoss: number | null;
}

export class TrainingDivergedError extends Error {
  constructor(message: string, readonly step: number) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

const DEFAULT_NO_DECAY = ['norms', '\\.bias$'];

export type { RandomStateful };

export class Trainer {
  readonly model: CausalLM;
  readonly config: Required<Omit<TrainerConfig, 'warmupSteps' | 'stepsPerEpoch' | 'frozen' | 'checkpointContent'>> &
    Pick<TrainerConfig, 'warmupSteps' | 'stepsPerEpoch' | 'frozen' | 'checkpointContent'>;
  readonly params: Map<string, Tensor>;
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly runDir: string;
  readonly metrics: MetricsWriter;
  /** Dropout / random-router stream. */
  readonly forwardRng: Rng;
  step = 0;
  tokensSeen = 0;
  private readonly train: TrainBatchSource;
  private readonly evalSet: EvalSet | null;
  private readonly aux: readonly WeightedAuxLoss[];
  private readonly progress: ProgressSink;
  private readonly hooks: TrainerHooks;
  private readonly extra: unknown;
  private readonly warn: (line: string) => void;
  private readonly content: CheckpointContent;
  private readonly noDecay: RegExp[];
  private stopRequested = false;
  private lastCheckpointDir: string | null = null;
  private lastCheckpointStep = -1;
  private elapsed = 0;
  private processed = 0;

  constructor(o: TrainerOptions) {
    const c = o.config;
    this.config = {
      ...c,
      gradAccumSteps: c.gradAccumSteps ?? 1,
      warmupRatio: c.warmupRatio ?? 0.1,
      minLrRatio: c.minLrRatio ?? 0.1,
      beta1: c.beta1 ?? 0.9,
      beta2: c.beta2 ?? 0.95,
      eps: c.eps ?? 1e-8,
      weightDecay: c.weightDecay ?? 0.1,
      noDecay: c.noDecay ?? DEFAULT_NO_DECAY,
      clipGradNorm: c.clipGradNorm === undefined ? 1 : c.clipGradNorm,
      trainable: c.trainable ?? ['all'],
      gradientCheckpointing: c.gradientCheckpointing ?? false,
      evalEvery: c.evalEvery ?? 0,
      checkpointEvery: c.checkpointEvery ?? 0,
      keepCheckpoints: c.keepCheckpoints ?? 3,
      seed: c.seed ?? 0,
    };
    const cfg = this.config;
    const posInt = (v: number, name: string, min = 1): void => {
      if (!Number.isInteger(v) || v < min) throw new Error(`trainer: ${name} must be an integer >= ${min}, got ${v}`);
    };
    posInt(cfg.steps, 'steps');
    posInt(cfg.gradAccumSteps, 'gradAccumSteps');
    posInt(cfg.evalEvery, 'evalEvery', 0);
    posInt(cfg.checkpointEvery, 'checkpointEvery', 0);
    posInt(cfg.keepCheckpoints, 'keepCheckpoints');
    if (cfg.clipGradNorm !== null && !(cfg.clipGradNorm > 0)) throw new Error(`trainer: clipGradNorm must be positive or null, got ${cfg.clipGradNorm}`);
    this.model = o.model;
    this.params = selectTrainable(o.model, { train: cfg.trainable, frozen: cfg.frozen });
    const total = new Set(o.model.namedParameters().map(([, t]) => t)).size;
    this.content = cfg.checkpointContent ?? (this.params.size === total ? 'full' : 'trainable');
    this.optimizer = new AdamW(this.params, { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay });
    this.noDecay = cfg.noDecay.map((p) => {
      const preset = Object.hasOwn(TRAINABLE_PRESETS, p) ? TRAINABLE_PRESETS[p] : undefined;
      if (preset) return preset;
      try {
        return new RegExp(p);
      } catch (e) {
        throw new Error(`trainer: noDecay '${p}' is neither a preset (${Object.keys(TRAINABLE_PRESETS).join(', ')}) nor a valid regular expression (${(e as Error).message})`);
      }
    });
    this.schedule = createLrSchedule({ peakLr: cfg.lr, totalSteps: cfg.steps, warmupSteps: cfg.warmupSteps, warmupRatio: cfg.warmupRatio, minLrRatio: cfg.minLrRatio });
    this.runDir = o.runDir;
    this.metrics = new MetricsWriter(o.runDir);
    this.forwardRng = new Rng(cfg.seed);
    this.train = o.train;
    this.evalSet = o.eval ?? null;
    this.aux = o.auxLosses ?? [];
    const names = new Set<string>();
    for (const a of this.aux) {
      if (names.has(a.loss.name)) throw new Error(`trainer: two aux losses are named '${a.loss.name}'`);
      names.add(a.loss.name);
    }
    this.progress = o.progress ?? silentProgress;
    this.hooks = o.hooks ?? {};
    this.extra = o.extra ?? null;
    this.warn = o.onWarning ?? ((line) => { process.stderr.write(`moe-tune: warning: ${line}\n`); });
  }

  /** Whether AdamW decays this trainable parameter (not matched by config.noDecay). */
  decays(name: string): boolean {
    return !this.noDecay.some((r) => r.test(name));
  }

  /** Ends the run after the current step, writing a checkpoint (SIGINT). */
  requestStop(): void {
    this.stopRequested = true;
  }

  get stopping(): boolean {
    return this.stopRequested;
  }

  /** Seconds spent in training steps (eval and checkpoints excluded), across resumes. */
  get elapsedSeconds(): number {
    return this.elapsed;
  }

  /** Input tokens processed by training steps, across resumes. */
  get tokensProcessed(): number {
    return this.processed;
  }

  get auxNames(): string[] {
    return this.aux.map((a) => a.loss.name);
  }

  /** Optimizer steps per epoch (for per-epoch schedules). */
  get stepsPerEpoch(): number {
    if (this.config.stepsPerEpoch) return this.config.stepsPerEpoch;
    const b = this.train.batchesPerEpoch;
    return b === null ? this.config.steps : Math.max(1, Math.floor(b / this.config.gradAccumSteps));
  }

  /**
   * Continues from the newest checkpoint of the run directory, if any (returns its step, or null).
   * Leftovers of a checkpoint write that was killed are removed first.
   */
  resume(): number | null {
    removeStaleCheckpointTemps(this.runDir);
    const latest = latestCheckpoint(this.runDir);
    for (const bad of incompleteCheckpoints(this.runDir)) {
      if (latest === null || bad.step > latest.step) {
        this.warn(`${bad.dir}: incomplete checkpoint (no ${bad.missing.join(', ')}); skipped, ${latest ? `resuming from step ${latest.step}` : 'starting from step 0'}`);
      } else {
        removeCheckpointDir(bad.dir); // an older one: what a killed pruning left behind
      }
    }
    if (!latest) return null;
    const ck = readTrainCheckpoint(latest.dir);
    const where = path.join(latest.dir, 'trainer-state.json');
    const trainable = [...this.params.keys()];
    if (ck.state.trainable.length !== trainable.length || ck.state.trainable.some((n, i) => n !== trainable[i])) {
      throw new Error(`${where}: the checkpoint trains ${ck.state.trainable.length} parameters, this run ${trainable.length} (first difference: ${ck.state.trainable.find((n, i) => n !== trainable[i]) ?? trainable[ck.state.trainable.length]}); resume with the same model and trainable settings`);
    }
    const all = new Map(this.model.namedParameters());
    for (const [name, data] of ck.params) {
      const t = all.get(name);
      if (!t) throw new Error(`${where}: parameter '${name}' is not in the model`);
      if (t.size !== data.length) throw new Error(`${where}: parameter '${name}' has ${data.length} values in the checkpoint, ${t.size} in the model`);
      (t.f as Float32Array).set(data);
    }
    this.optimizer.loadState({ step: ck.state.optimizer.step, m: ck.m, v: ck.v, steps: ck.state.optimizer.steps });
    try {
      this.train.restore(ck.state.data);
    } catch (err) {
      throw new Error(`${where}: field 'data': ${(err as Error).message}`);
    }
    const fwd = ck.state.rng['forward'];
    if (fwd) this.forwardRng.restore(fwd);
    const routers = statefulRouters(this.model);
    const saved = (ck.state.routers ?? []) as unknown[];
    if (saved.length !== routers.length) throw new Error(`${where}: the checkpoint holds the random state of ${saved.length} router(s), the model has ${routers.length}`);
    routers.forEach((r, i) => {
      try {
        r.restoreRandomState(saved[i]);
      } catch (err) {
        throw new Error(`${where}: field 'routers.${i}': ${(err as Error).message}`);
      }
    });
    this.step = ck.state.step;
    this.tokensSeen = ck.state.tokensSeen;
    this.elapsed = ck.state.elapsedS ?? 0;
    this.processed = ck.state.tokensProcessed ?? 0;
    this.lastCheckpointDir = latest.dir;
    this.lastCheckpointStep = latest.step;
    this.metrics.truncateAfter(this.step);
    return this.step;
  }

  /** Runs until config.steps (or a stop request); resumable. */
  async run(): Promise<TrainResult> {
    fs.mkdirSync(this.runDir, { recursive: true });
    if (this.step === 0) this.metrics.truncateAfter(0);
    writeJsonAtomic(path.join(this.runDir, 'trainer-config.json'), { config: this.config, content: this.content, trainable: [...this.params.keys()], aux: this.auxNames, extra: this.extra });
    const total = this.config.steps;
    let firstLoss: number | null = null;
    let lastLoss: number | null = null;
    let lastEval: EvalResult | null = null;
    this.progress.start({ totalSteps: total, startStep: this.step });
    try {
      while (this.step < total && !this.stopRequested) {
        const m = this.trainStep();
        firstLoss ??= m.loss;
        lastLoss = m.loss;
        const last = this.step === total;
        if (this.evalSet && ((this.config.evalEvery > 0 && this.step % this.config.evalEvery === 0) || last)) {
          lastEval = evaluateLoss(this.model, this.evalSet, this.config.seed);
          m.eval_loss = lastEval.loss;
          m.eval_ppl = lastEval.ppl;
          m.eval_load = lastEval.load;
          this.progress.message(`eval at step ${this.step}: loss ${lastEval.loss.toFixed(4)}, ppl ${lastEval.ppl.toFixed(2)}${lastEval.load !== null ? `, load ${lastEval.load.toFixed(2)}` : ''}`);
        }
        this.metrics.append(m);
        this.progress.step(m, this.auxNames);
        this.hooks.afterStep?.(m, this);
        if (last || this.stopRequested || (this.config.checkpointEvery > 0 && this.step % this.config.checkpointEvery === 0)) {
          await this.checkpoint();
        }
        // let signal handlers run between steps
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (this.stopRequested && this.lastCheckpointStep !== this.step) await this.checkpoint();
    } finally {
      this.progress.stop();
      this.metrics.close();
    }
    return {
      step: this.step, stopped: this.step < total, lastCheckpoint: this.lastCheckpointDir, lastEval,
      metricsPath: this.metrics.path, firstLoss, lastLoss,
    };
  }

  /** Writes a checkpoint of the current state (skipped when one exists for this step). */
  async checkpoint(): Promise<string> {
    if (this.lastCheckpointStep === this.step && this.lastCheckpointDir) return this.lastCheckpointDir;
    const params = this.content === 'full'
      ? new Map(dedupe(this.model.namedParameters()))
      : this.params;
    const hook = this.hooks.midCheckpointWrite;
    this.lastCheckpointDir = await writeTrainCheckpoint(this.runDir, {
      step: this.step, content: this.content, params, trainable: [...this.params.keys()], optimizer: this.optimizer.state(),
      data: this.train.state(), rng: { forward: this.forwardRng.state() }, routers: statefulRouters(this.model).map((r) => r.randomState()), lr: this.schedule.at(Math.max(0, this.step - 1)),
      tokensSeen: this.tokensSeen, elapsedS: this.elapsed, tokensProcessed: this.processed, config: this.config, extra: this.extra,
    }, { keep: this.config.keepCheckpoints, midWrite: hook ? (tmp) => hook(tmp, this.step) : undefined });
    this.lastCheckpointStep = this.step;
    return this.lastCheckpointDir;
  }

  private divergedMessage(what: string, detail: string): string {
    const ck = this.lastCheckpointDir ? `the last good checkpoint is ${this.lastCheckpointDir}` : 'no checkpoint was written yet';
    return `training diverged at step ${this.step + 1}: ${what} (${detail}); stopped before updating the weights; ${ck}`;
  }

  /** One optimizer step; returns its metrics (eval fields not yet filled). */
  trainStep(): StepMetrics {
    const cfg = this.config;
    const A = cfg.gradAccumSteps;
    const t0 = performance.now();
    const lr = this.schedule.at(this.step);
    this.optimizer.lr = lr;
    const micro: TrainBatch[] = [];
    for (let i = 0; i < A; i++) micro.push(this.train.next());
    const targets = micro.map((b) => countTargets(b.labels));
    const allTargets = targets.reduce((a, b) => a + b, 0);
    const sctx = { step: this.step, totalSteps: cfg.steps, stepsPerEpoch: this.stepsPerEpoch };
    const weights = this.aux.map((a) => a.weight.at(sctx));
    const auxSum = new Array<number>(this.aux.length).fill(0);
    const auxSeen = new Array<number>(this.aux.length).fill(0);
    let lmSum = 0;
    let lossSum = 0;
    let tokens = 0;
    const loadSum: number[] = [];
    const loadTok: number[] = [];
    const perExpert: number[][] = [];

    const { norm, clip } = withScope(() => {
      zeroGrad(this.params.values());
      micro.forEach((batch, i) => withScope(() => {
        const ids = new Tensor(batch.inputIds, [batch.batchSize, batch.seqLen]);
        const labels = new Tensor(batch.labels, [batch.batchSize, batch.seqLen]);
        tokens += batch.inputIds.length;
        const ctx = new ForwardContext(true, this.forwardRng, this.step);
        ctx.checkpointLayers = cfg.gradientCheckpointing;
        const logits = this.model.forward(ids, { ctx });
        const lm = ops.crossEntropy(logits, labels, { ignoreIndex: IGNORE_INDEX });
        const share = allTargets === 0 ? 1 / A : targets[i]! / allTargets;
        let total = ops.scale(lm, share);
        const lmValue = lm.item();
        lmSum += lmValue * share;
        const auxValues: string[] = [];
        this.aux.forEach((a, j) => {
          const v = a.loss.compute(ctx.routing);
          if (v === null) return;
          const value = v.item();
          auxSum[j]! += value;
          auxSeen[j]!++;
          auxValues.push(`${a.loss.name} ${value}`);
          if (weights[j] !== 0) total = ops.add(total, ops.scale(v, weights[j]! / A));
        });
        const totalValue = total.item();
        if (!Number.isFinite(totalValue)) {
          throw new TrainingDivergedError(this.divergedMessage(`loss is ${totalValue}`, `lm_loss ${lmValue}${auxValues.length ? `, ${auxValues.join(', ')}` : ''}, micro-batch ${i + 1} of ${A}`), this.step + 1);
        }
        lossSum += totalValue;
        ctx.routing.forEach((r, k) => {
          const st = r.routing.stats;
          loadSum[k] = (loadSum[k] ?? 0) + st.trueExpertsPerToken * st.tokens;
          loadTok[k] = (loadTok[k] ?? 0) + st.tokens;
          const pe = (perExpert[k] ??= new Array<number>(st.tokensPerExpert.length).fill(0));
          st.tokensPerExpert.forEach((c, e) => { pe[e] = (pe[e] ?? 0) + c; });
        });
        if (total.requiresGrad) backward(total, undefined, { releaseScope: true });
      }));
      const n = this.optimizer.gradNorm();
      if (!Number.isFinite(n)) {
        throw new TrainingDivergedError(this.divergedMessage(`gradient norm is ${n}`, `loss ${lossSum}`), this.step + 1);
      }
      const c = cfg.clipGradNorm !== null && n > cfg.clipGradNorm ? cfg.clipGradNorm / (n + 1e-6) : 1;
      this.optimizer.update(c, (name) => this.decays(name));
      return { norm: n, clip: c };
    });

    this.step++;
    this.tokensSeen += allTargets;
    const seconds = (performance.now() - t0) / 1000;
    this.elapsed += seconds;
    this.processed += tokens;
    const loads = loadSum.map((s, k) => s / Math.max(1, loadTok[k]!));
    const loadAll = loadTok.length === 0 ? null : loadSum.reduce((a, b) => a + b, 0) / Math.max(1, loadTok.reduce((a, b) => a + b, 0));
    const bpe = this.train.batchesPerEpoch;
    const m: StepMetrics = {
      step: this.step,
      epoch: bpe ? (this.step * A) / bpe : null,
      loss: lossSum,
      lm_loss: lmSum,
      load: loadAll,
      load_per_layer: loads,
      tokens_per_expert: perExpert,
      lr,
      grad_norm: norm,
      clip_scale: clip,
      tokens,
      targets: allTargets,
      tokens_per_s: tokens / Math.max(seconds, 1e-9),
      elapsed_s: this.elapsed,
    };
    this.aux.forEach((a, j) => {
      m[a.loss.name] = auxSeen[j]! > 0 ? auxSum[j]! / auxSeen[j]! : null;
      m[`${a.loss.name}_weight`] = weights[j]!;
    });
    return m;
  }
}

function dedupe(entries: [string, Tensor][]): [string, Tensor][] {
  const seen = new Set<Tensor>();
  return entries.filter(([, t]) => (seen.has(t) ? false : (seen.add(t), true)));
}
