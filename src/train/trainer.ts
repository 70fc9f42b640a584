// The training loop: batches from a seeded, resumable stream, one optimizer update per batch,
// evaluation after every epoch (and where the run stops), the `last` and `best` checkpoints,
// metrics.jsonl, and the stops: --max-steps, Ctrl-C (a checkpoint, then a clean exit) and a
// NaN/Inf loss (stop before the update, keep the last good checkpoint).
//
// Everything a step depends on is a function of (seed, epoch, batch index) or is stored in the
// checkpoint (weights, BatchNorm statistics, optimizer slots, dropout random state), so
// training k steps, stopping, resuming and training N-k more gives the weights of N steps.
import { mkdirSync } from 'fs';
import * as path from 'path';
import * as tf from '../tf';
import * as zoo from '../zoo';
import type { ModelSpec, WeightsProvenance, ZooModel } from '../zoo';
import type { ModelForShape } from '../inference/model-for-shape';
import type { Batch, Dataset } from '../data/dataset';
import { Rng } from '../random/prng';
import { batchToTensors } from '../data/tensors';
import {
  CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointState, DataSpec, EvalSummary, LoadedCheckpoint, Position,
  loadCheckpointWeights, readOptimizerSlots, removeStaleTemporaries, saveCheckpoint,
} from './checkpoint';
import { evaluate, EvalResult, primaryMetric } from './evaluate';
import { dataSpecFor } from './data-spec';
import { pixelCrossEntropy, softmaxCrossEntropy } from './losses';
import { Optimizer, Param, trainableParams } from './optimizers';
import { baseName } from '../weights/mapping';
import { defaultReporter, MetricsLog, Reporter } from './progress';
import type { TrainConfig } from './recipes';
import { learningRateAt } from './schedules';
import { withSeededMathRandom } from '../random/seeded-math-random';
import { peakRssBytes } from '../process-memory';
import { DataFingerprint, describeDataChange, fingerprintData } from './data-fingerprint';
import { lockRunFolder } from './run-lock';
import type { ConfigChange } from './checkpoint';
import type { DataParallel } from '../distributed/data-parallel';
import { withBatchStatsReducer } from '../core/bn-relu-conv';

/** The random stream of the trainer's own draws (dropout), apart from the data's and the initial weights'. */
const DROPOUT_STREAM = 0x64726f70;

export const LAST = 'last';
export const BEST = 'best';
export const METRICS_FILE = 'metrics.jsonl';

/** Set `requested` (from a SIGINT handler) to stop after the current step with a checkpoint. */
export interface StopSignal {
  requested: boolean;
}

export interface TrainOptions {
  /**
   * The model to train: one from zoo.create or zoo.load (fine-tuning), trained in place and left
   * to the caller to dispose; or the spec of one to build with initial weights from the seed.
   */
  model: ZooModel | ModelSpec;
  dataset: Dataset;
  /** How eval, predict and --resume reopen the data (default: dataSpecFor(dataset)). */
  data?: DataSpec;
  config: TrainConfig;
  /** Run folder: last/, best/, metrics.jsonl. */
  out: string;
  /** Continue from this checkpoint (its model and data specs must be the ones given). */
  resume?: LoadedCheckpoint;
  reporter?: Reporter;
  stop?: StopSignal;
  /** Backend name, for the summary record. */
  backend?: string;
  /**
   * Data-parallel training: this process is one rank of several. Rank 0 alone reads the resume
   * checkpoint, logs, evaluates and writes checkpoints; every rank gets its weights and position.
   */
  parallel?: DataParallel;
}

export interface TrainResult {
  status: 'completed' | 'interrupted';
  position: Position;
  lastEval?: EvalSummary;
  best?: CheckpointState['best'];
  /** Folder of the last checkpoint. */
  checkpoint: string;
  trainSeconds: number;
  peakRssBytes: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number, detail: string) {
    super(detail);
    this.name = 'NonFiniteLossError';
  }
}

interface StepStats {
  loss: number;
  correct: number;
  counted: number;
  /** Data-parallel training: whether any rank was asked to stop, as of this step's collective. */
  agreedStop?: boolean;
}

/** The run's fixed quantities. */
interface Plan {
  stepsPerEpoch: number;
  totalSteps: number;
  stopStep: number;
}

export function planRun(dataset: Dataset, config: TrainConfig): Plan {
  const stepsPerEpoch = dataset.numBatches('train', { batchSize: config.batchSize });
  if (stepsPerEpoch < 1) throw new Error(`dataset ${dataset.name} has no training samples`);
  const totalSteps = Math.max(1, Math.ceil(config.epochs * stepsPerEpoch));
  return { stepsPerEpoch, totalSteps, stopStep: Math.min(totalSteps, config.maxSteps ?? Infinity) };
}

/** The weights the optimizer updates: all, or the classifier's alone (frozen backbone), the backbone's at its own rate. */
function fineTuningParams(model: tf.LayersModel, head: string, config: TrainConfig): Param[] {
  const isHead = (p: Param) => p.name.startsWith(`${head}/`);
  const params = trainableParams(model, config.weightDecayScope);
  if (config.freezeBackbone) return params.filter(isHead);
  return params.map((p) => (isHead(p) ? p : { ...p, lrScale: config.backboneLrMult }));
}

/** The model must take the data: the same task, classes and channels (and image size, for classification). */
function checkModelFitsData(spec: ModelSpec, dataset: Dataset, segmentationCrop: boolean): void {
  const [h, w, c] = dataset.imageShape;
  const problems = [
    spec.task !== dataset.task ? `it is a ${spec.task} model and ${dataset.name} a ${dataset.task} dataset` : '',
    spec.numClasses !== dataset.numClasses ? `it has ${spec.numClasses} classes and ${dataset.name} ${dataset.numClasses} (give numClasses: ${dataset.numClasses})` : '',
    spec.inputShape[2] !== c ? `it takes ${spec.inputShape[2]}-channel input and ${dataset.name} has ${c}-channel images` : '',
    spec.task === 'classification' && (spec.inputShape[0] !== h || spec.inputShape[1] !== w)
      ? `it takes ${spec.inputShape[0]}x${spec.inputShape[1]} images and ${dataset.name} has ${h}x${w}` : '',
    spec.task === 'segmentation' && !segmentationCrop && (spec.inputShape[0] !== h || spec.inputShape[1] !== w)
      ? `it takes ${spec.inputShape[0]}x${spec.inputShape[1]} images and ${dataset.name} has ${h}x${w} (train on crops of its size, or build it for ${h}x${w})` : '',
  ].filter(Boolean);
  if (problems.length) throw new Error(`cannot train ${spec.name} on ${dataset.name}: ${problems.join('; ')}`);
}

/** Resuming on other data would be another run (or, on a smaller split, find no next batch): refuse it. */
function checkSameData({ dir, state }: LoadedCheckpoint, dataset: Dataset, config: TrainConfig, now: DataFingerprint): void {
  const change = state.trainData ? describeDataChange(state.trainData, now) : undefined;
  const steps = planRun(dataset, config).stepsPerEpoch;
  const detail = change ?? (steps !== state.stepsPerEpoch ? `it gives ${steps} steps per epoch, the run had ${state.stepsPerEpoch}` : undefined);
  if (detail) throw new Error(`cannot resume ${dir} on this ${dataset.name} data: ${detail}; resume on the data the run was trained on, or start a new run with another --out`);
}

/** The settings a resume changes (a new --lr, --max-steps, ...), as taking effect at `step`. */
function changedSettings(before: TrainConfig, after: TrainConfig, step: number): ConfigChange[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])] as Array<keyof TrainConfig>;
  return keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => ({ step, setting: k, from: before[k] ?? null, to: after[k] ?? null }));
}

export class Trainer {
  private readonly model: ZooModel;
  /** Whether the trainer built the model (and so disposes it). */
  private readonly ownsModel: boolean;
  private readonly spec: ModelSpec;
  private readonly data: DataSpec;
  private readonly initialWeights?: WeightsProvenance;
  /** Fine-tuning with a frozen backbone: the classifier's input, computed in inference mode. */
  private readonly backbone?: { features: tf.LayersModel; head: tf.layers.Layer };
  private readonly optimizer: Optimizer;
  private readonly evalModels: ModelForShape;
  private readonly plan: Plan;
  /** The run folder's metrics log; other ranks than 0 write none. */
  private readonly log?: MetricsLog;
  private readonly reporter: Reporter;
  private readonly stop: StopSignal;
  private rng: Rng;
  private position: Position = { step: 0, epoch: 0, batch: 0 };
  private best?: CheckpointState['best'];
  private lastEval?: EvalSummary;
  private previousSeconds = 0;
  private startedAt = 0;
  /** Whether `last/` holds the current position. */
  private saved = false;
  /** Step of the newest checkpoint in `last/`. */
  private savedStep?: number;
  private configChanges: ConfigChange[] = [];
  /** Releases the run folder's lock. */
  private unlock?: () => void;

  private constructor(private readonly opts: TrainOptions, private readonly trainData: DataFingerprint) {
    this.plan = planRun(opts.dataset, opts.config);
    this.data = opts.data ?? dataSpecFor(opts.dataset);
    const given = 'card' in opts.model ? opts.model : undefined;
    checkModelFitsData(given?.card.spec ?? (opts.model as ModelSpec), opts.dataset, opts.config.augment && opts.config.crop !== undefined);
    this.ownsModel = !given;
    // Initial weights from the seed too: the same seed gives the same run.
    this.model = given ?? zoo.create(opts.model.name, { ...(opts.model as ModelSpec), seed: opts.config.seed });
    this.spec = this.model.card.spec;
    this.initialWeights = opts.resume?.state.initialWeights ?? this.model.card.weights;
    const head = zoo.info(this.spec.name).classifier;
    if (opts.config.freezeBackbone) {
      const layer = this.model.getLayer(head);
      this.backbone = { features: tf.model({ inputs: this.model.inputs, outputs: layer.input as tf.SymbolicTensor }), head: layer };
    }
    this.optimizer = new Optimizer(opts.config, fineTuningParams(this.model, head, opts.config));
    this.evalModels = zoo.modelsBySize(this.model);
    this.log = this.isLeader ? new MetricsLog(path.join(opts.out, METRICS_FILE)) : undefined;
    this.reporter = opts.reporter ?? defaultReporter();
    this.stop = opts.stop ?? { requested: false };
    this.rng = this.dropoutStream(0);
  }

  /** Whether this process writes the run folder: always, but for ranks above 0 of a data-parallel run. */
  private get isLeader(): boolean {
    return this.opts.parallel?.isLeader ?? true;
  }

  /** Rank 0's dropout stream is the checkpointed one; the others draw their own, from the step they start at. */
  private dropoutStream(step: number): Rng {
    const rank = this.opts.parallel?.rank ?? 0;
    return rank === 0 ? Rng.from(this.opts.config.seed, DROPOUT_STREAM) : Rng.from(this.opts.config.seed, DROPOUT_STREAM, rank, step);
  }

  /** Builds the model (and restores the checkpoint when resuming). */
  static async create(opts: TrainOptions): Promise<Trainer> {
    planRun(opts.dataset, opts.config); // reads the training split: bad data fails before anything is written
    const trainData = await fingerprintData(opts.dataset);
    if (opts.resume) checkSameData(opts.resume, opts.dataset, opts.config, trainData);
    const writer = opts.parallel?.isLeader ?? true;
    if (writer) mkdirSync(opts.out, { recursive: true });
    const unlock = writer ? lockRunFolder(opts.out) : () => {};
    let t: Trainer | undefined;
    try {
      if (writer) await removeStaleTemporaries(opts.out); // after the lock: another trainer's temporaries are not stale
      t = new Trainer(opts, trainData);
      t.unlock = unlock;
      if (opts.resume && writer) await t.restore(opts.resume);
      if (opts.parallel) await t.syncWithLeader(opts.parallel);
    } catch (err) {
      if (t) t.dispose();
      else unlock();
      throw err;
    }
    return t;
  }

  private async restore({ dir, state }: LoadedCheckpoint): Promise<void> {
    await loadCheckpointWeights(this.model, dir);
    this.optimizer.loadSlots(await readOptimizerSlots(dir), dir);
    this.rng = Rng.fromState(state.rng);
    this.position = { ...state.position };
    this.best = state.best;
    this.lastEval = state.lastEval;
    this.previousSeconds = state.trainSeconds ?? 0;
    const changed = changedSettings(state.config, this.opts.config, state.position.step);
    this.configChanges = [...(state.configChanges ?? []), ...changed];
    if (changed.length) {
      this.reporter.note(`resuming with changed settings (recorded in the checkpoint): ${changed.map((c) => `${c.setting} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join(', ')}`);
    }
    this.saved = true;
    this.savedStep = state.position.step;
  }

  /** Every rank starts from rank 0's weights, optimizer state and position (fresh or resumed). */
  private async syncWithLeader(parallel: DataParallel): Promise<void> {
    const leader = parallel.comm.fromLeader(parallel.isLeader
      ? { position: this.position, best: this.best, lastEval: this.lastEval, previousSeconds: this.previousSeconds, data: this.trainData }
      : undefined);
    if (JSON.stringify(leader.data) !== JSON.stringify(this.trainData)) {
      throw new Error(`rank ${parallel.rank} reads other training data than rank 0 (${describeDataChange(leader.data, this.trainData) ?? 'another fingerprint'}); ` +
        'every rank must read the same data set');
    }
    Object.assign(this, { position: leader.position, best: leader.best, lastEval: leader.lastEval, previousSeconds: leader.previousSeconds });
    await parallel.broadcastVariables(this.model.weights);
    const slots = await this.optimizer.readSlots();
    parallel.broadcastArrays([...slots.values()].map((v) => v.data));
    this.optimizer.loadSlots(slots, 'rank 0');
    if (!parallel.isLeader) this.rng = this.dropoutStream(this.position.step);
  }

  get lastDir(): string {
    return path.join(this.opts.out, LAST);
  }

  async run(): Promise<TrainResult> {
    const { config, dataset } = this.opts;
    const { stopStep } = this.plan;
    this.startedAt = Date.now();
    this.log?.truncateAfter(this.opts.resume ? this.position.step : -1);
    this.reporter.note(`training ${zoo.describeSpec(this.spec)}${this.fineTuning()}, ${zoo.countTrainableParams(this.model).toLocaleString('en-US')} parameters, on ${dataset.name}: ${this.plan.stepsPerEpoch} steps per epoch, ` +
      `stopping at step ${stopStep} (${config.recipe} recipe, ${config.optimizer}, lr ${config.lr}, batch ${config.batchSize})` +
      (this.opts.resume ? `; resuming at step ${this.position.step}` : ''));
    if (this.position.step >= stopStep && this.lastEval?.step === this.position.step) {
      this.reporter.note(`the run is already at step ${this.position.step}; nothing to do`);
      this.reporter.stop();
      return this.result('completed');
    }
    this.reporter.start(this.position.step, stopStep);
    try {
      const status = await this.loop();
      const result = this.isLeader ? await this.finish(status) : this.result(status);
      this.log?.append({
        type: 'summary', step: this.position.step, epoch: this.epochsDone(), status, params: zoo.countTrainableParams(this.model),
        trainSeconds: result.trainSeconds, peakRssBytes: result.peakRssBytes, backend: this.opts.backend ?? tf.getBackend(),
        lastEval: this.lastEval, best: this.best,
      });
      return result;
    } finally {
      this.reporter.stop();
    }
  }

  private async finish(status: TrainResult['status']): Promise<TrainResult> {
    if (status === 'completed' && this.lastEval?.step !== this.position.step) await this.evaluateAndSave();
    else if (!this.saved) await this.saveLast();
    return this.result(status);
  }

  private async loop(): Promise<'completed' | 'interrupted'> {
    const { config, dataset } = this.opts;
    const { stepsPerEpoch, stopStep } = this.plan;
    const acc = { loss: 0, correct: 0, counted: 0, steps: 0, images: 0, seconds: 0 };
    let runSteps = 0;
    let runSeconds = 0;
    while (this.position.step < stopStep) {
      const batches = dataset.batches('train', {
        batchSize: config.batchSize, seed: config.seed, epoch: this.position.epoch, startBatch: this.position.batch,
        augment: config.augment, ...this.cropOption(),
      });
      // Step time counts reading the batch too, but not evaluations and checkpoints.
      let tick = performance.now();
      let stepped = false;
      for await (const batch of batches) {
        stepped = true;
        const lr = learningRateAt(config, this.plan, this.position.step);
        const stats = await this.trainStep(batch, lr);
        // The data readers and tfjs can resolve without a macrotask: let Ctrl-C's handler run between steps.
        await new Promise((resolve) => setImmediate(resolve));
        const seconds = (performance.now() - tick) / 1000;
        this.position = { ...this.position, step: this.position.step + 1, batch: this.position.batch + 1 };
        this.saved = false;
        Object.assign(acc, {
          loss: acc.loss + stats.loss, correct: acc.correct + stats.correct, counted: acc.counted + stats.counted,
          steps: acc.steps + 1, images: acc.images + batch.count, seconds: acc.seconds + seconds,
        });
        runSteps++;
        runSeconds += seconds;
        const step = this.position.step;
        const logNow = step % config.logEvery === 0 || step === stopStep;
        const report = {
          epoch: this.position.epoch + 1, epochs: config.epochs, step, stopStep,
          loss: acc.loss / acc.steps, accuracy: acc.counted ? acc.correct / acc.counted : 0, lr,
          imagesPerSecond: acc.images / Math.max(acc.seconds, 1e-9), etaSeconds: ((stopStep - step) * runSeconds) / runSteps,
        };
        this.reporter.step(report, logNow);
        if (logNow) {
          this.log?.append({
            type: 'train', step, epoch: this.epochsDone(), loss: report.loss, lr,
            metrics: { accuracy: report.accuracy }, imagesPerSecond: report.imagesPerSecond, steps: acc.steps,
          });
          Object.assign(acc, { loss: 0, correct: 0, counted: 0, steps: 0, images: 0, seconds: 0 });
        }
        const epochDone = this.position.batch >= stepsPerEpoch;
        if (epochDone) this.position = { ...this.position, epoch: this.position.epoch + 1, batch: 0 };
        // Ranks stop on what they agreed: a Ctrl-C that arrived after the step's collective waits for the next.
        const stopping = stats.agreedStop ?? this.stop.requested;
        if (!this.isLeader) {
          // other ranks wait for rank 0's evaluations and checkpoints at the next collective
        } else if (epochDone || step === stopStep || (config.evalEvery && step % config.evalEvery === 0)) {
          await this.evaluateAndSave(); // also where --max-steps or a fractional --epochs ends mid-epoch
        } else if ((config.checkpointEvery && step % config.checkpointEvery === 0) || stopping) {
          await this.saveLast();
        }
        if (stopping) return 'interrupted';
        if (step >= stopStep) return 'completed';
        if (epochDone) break;
        tick = performance.now();
      }
      if (!stepped) {
        throw new Error(`the training data has no batch ${this.position.batch + 1} in epoch ${this.position.epoch + 1} (it gives ${stepsPerEpoch} per epoch); it changed under the run`);
      }
    }
    return 'completed';
  }

  private cropOption(): { crop?: [number, number] } {
    const { config, dataset } = this.opts;
    if (dataset.task !== 'segmentation' || !config.augment) return {};
    const [h, w] = this.spec.inputShape;
    const [ih, iw] = dataset.imageShape;
    return h === ih && w === iw ? {} : { crop: [h, w] };
  }

  private lossOf(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
    const { dataset } = this.opts;
    return dataset.task === 'segmentation'
      ? pixelCrossEntropy(logits, labels, { ignoreLabel: dataset.ignoreLabel })
      : softmaxCrossEntropy(logits, labels);
  }

  /** [correct, counted] predictions (pixels that are not ignored, for segmentation). */
  private accuracyCounts(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => {
      const predicted = tf.argMax(logits, -1);
      const truth = tf.cast(labels, 'int32');
      const ignore = this.opts.dataset.ignoreLabel;
      const keep = ignore === undefined ? tf.onesLike(truth) : tf.cast(tf.notEqual(truth, ignore), 'int32');
      const correct = tf.sum(tf.mul(tf.cast(tf.equal(predicted, truth), 'int32'), keep));
      return tf.cast(tf.stack([correct, tf.sum(keep)]), 'float32') as tf.Tensor1D;
    });
  }

  private async trainStep(globalBatch: Batch, lr: number): Promise<StepStats> {
    const params = this.optimizer.params;
    const parallel = this.opts.parallel;
    const batch = parallel ? parallel.shard(globalBatch) : globalBatch;
    const { images, labels } = batchToTensors(batch);
    let logits: tf.Tensor | undefined;
    // A frozen backbone runs outside the gradient tape, in inference mode: its BatchNorm statistics stay as loaded.
    const features = this.backbone && tf.tidy(() => this.backbone!.features.apply(images, { training: false }) as tf.Tensor);
    // Data-parallel: each rank's loss is its share of the global batch's mean, so that the
    // gradients summed over the ranks (and synchronised BatchNorm's sums) are the global batch's.
    const { value, grads } = withSeededMathRandom(this.rng, () => withBatchStatsReducer(parallel?.batchStatsReducer(), () =>
      tf.variableGrads(() => {
        const out = (features ? this.backbone!.head.apply(features, { training: true }) : this.model.apply(images, { training: true })) as tf.Tensor;
        logits = tf.keep(out);
        const loss = this.lossOf(out, labels);
        return parallel ? tf.mul(loss, parallel.lossWeight) : loss;
      }, params.map((p) => p.variable)),
    ));
    features?.dispose();
    let ordered = params.map((p) => grads[p.variable.name] ?? tf.zerosLike(p.variable));
    const counts = this.accuracyCounts(logits!, labels);
    const [[localLoss], [localCorrect, localCounted]] = await Promise.all([value.data(), counts.data()]);
    tf.dispose([images, labels, logits!, value, counts]);
    let [loss, correct, counted] = [localLoss, localCorrect, localCounted];
    let agreedStop: boolean | undefined;
    if (parallel) {
      // One collective for the step: the gradients, the figures and whether any rank was asked to stop.
      const figures = Float32Array.of(localLoss, localCorrect, localCounted, this.stop.requested ? 1 : 0);
      ordered = await parallel.reduceGradients(ordered, figures);
      [loss, correct, counted] = figures;
      // A Ctrl-C seen after this collective counts at the next one: every rank stops after the same step.
      agreedStop = figures[3] > 0;
    }
    // A NaN can hide from the loss (ReLU maps it to 0) and still poison the gradients: check both.
    const finite = tf.tidy(() => tf.all(tf.stack(ordered.map((g) => tf.all(tf.isFinite(g))))));
    const [gradsOk] = await finite.data();
    finite.dispose();
    try {
      if (!Number.isFinite(loss) || !gradsOk) throw this.nonFinite(loss, !gradsOk);
      this.optimizer.apply(ordered, lr);
    } finally {
      tf.dispose(ordered);
      tf.dispose(Object.values(grads));
    }
    return { loss, correct, counted, agreedStop };
  }

  private fineTuning(): string {
    const { freezeBackbone, backboneLrMult } = this.opts.config;
    if (!this.initialWeights) return '';
    const how = freezeBackbone ? ', backbone frozen' : backboneLrMult !== 1 ? `, backbone lr x${backboneLrMult}` : '';
    return ` fine-tuned from ${this.initialWeights.source}${this.initialWeights.headLoaded ? '' : ' with a fresh head'}${how}`;
  }

  private keptCheckpoint(): string {
    return this.savedStep !== undefined
      ? `the last good checkpoint (step ${this.savedStep}) is kept in ${this.lastDir}`
      : 'no checkpoint had been written yet';
  }

  private nonFinite(loss: number, badGradients: boolean): NonFiniteLossError {
    const { step, epoch, batch } = this.position;
    const what = Number.isFinite(loss) ? `the gradients hold NaN or infinite values (the loss is ${loss})` : `the loss is ${loss}`;
    return new NonFiniteLossError(step + 1, badGradients && Number.isFinite(loss) ? NaN : loss,
      `training stopped: ${what} at step ${step + 1} (epoch ${epoch + 1}, batch ${batch + 1} of ${this.plan.stepsPerEpoch}); ` +
      `the weights were not updated with it and ${this.keptCheckpoint()}. Lower the learning rate (--lr) or check the data.`);
  }

  private nonFiniteEvaluation(result: EvalResult, metric: string): NonFiniteLossError {
    const step = this.position.step;
    return new NonFiniteLossError(step, result.loss,
      `training stopped: the ${result.split} evaluation after step ${step} gave loss ${result.loss} (${metric} ${result.metrics[metric]}); ` +
      `these weights are not saved, not as best either, and ${this.keptCheckpoint()}. Lower the learning rate (--lr).`);
  }

  /** A finite loss can still leave overflowed weights behind; no checkpoint is written with them. */
  private async checkFiniteWeights(): Promise<void> {
    const flags = tf.tidy(() => tf.stack(this.model.weights.map((w) => tf.all(tf.isFinite(w.read())))));
    const ok = await flags.data();
    flags.dispose();
    const bad = this.model.weights.filter((_, i) => !ok[i]);
    if (bad.length === 0) return;
    const step = this.position.step;
    throw new NonFiniteLossError(step, NaN,
      `training stopped: after step ${step} the weights hold NaN or infinite values (${bad.slice(0, 3).map((w) => baseName(w)).join(', ')}` +
      `${bad.length > 3 ? `, and ${bad.length - 3} more` : ''}); they are not saved and ${this.keptCheckpoint()}. Lower the learning rate (--lr).`);
  }

  private async evaluateAndSave(): Promise<void> {
    const result = await this.runEvaluation();
    const step = this.position.step;
    const epoch = this.epochsDone();
    const summary: EvalSummary = { step, epoch, split: result.split, loss: result.loss, metrics: result.metrics };
    this.lastEval = summary;
    this.log?.append({
      type: 'eval', step, epoch: this.epochsDone(), split: result.split, loss: result.loss, lr: learningRateAt(this.opts.config, this.plan, Math.max(0, step - 1)),
      metrics: result.metrics, count: result.count,
      ...(result.perClassIoU ? { perClassIoU: result.perClassIoU } : {}), confusion: result.confusion,
    });
    const metric = primaryMetric(this.opts.dataset.task);
    const value = result.metrics[metric];
    if (!Number.isFinite(result.loss) || !Number.isFinite(value)) throw this.nonFiniteEvaluation(result, metric);
    if (!this.best || value > this.best.metrics[metric]) {
      await this.checkFiniteWeights();
      this.best = { ...summary, metric };
      await saveCheckpoint(path.join(this.opts.out, BEST), this.model, this.optimizer, this.state());
    }
    await this.saveLast();
  }

  private async runEvaluation(): Promise<EvalResult> {
    const { config, dataset } = this.opts;
    const { data } = this;
    const t0 = Date.now();
    // Segmentation: one full image at a time, so that batch-statistics inference sees each image's own.
    const batchSize = config.evalBatchSize ?? (dataset.task === 'classification' ? Math.max(64, config.batchSize) : 1);
    const result = await evaluate(this.evalModels, dataset, {
      split: data.evalSplit, batchSize, limit: config.evalLimit,
      onBatch: (done, total) => this.reporter.evalProgress(done, total),
    });
    this.reporter.eval({
      split: result.split, step: this.position.step, epoch: this.epochsDone(), loss: result.loss,
      metrics: result.metrics, count: result.count, seconds: (Date.now() - t0) / 1000,
    });
    return result;
  }

  private state(): CheckpointState {
    return {
      format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, savedAt: new Date().toISOString(),
      model: this.spec, ...(this.initialWeights ? { initialWeights: this.initialWeights } : {}), data: this.data, config: this.opts.config,
      stepsPerEpoch: this.plan.stepsPerEpoch, totalSteps: this.plan.totalSteps,
      position: { ...this.position }, rng: this.rng.getState(),
      ...(this.best ? { best: this.best } : {}), ...(this.lastEval ? { lastEval: this.lastEval } : {}),
      trainSeconds: this.trainSeconds(),
      trainData: this.trainData,
      ...(this.configChanges.length ? { configChanges: this.configChanges } : {}),
    };
  }

  /** Epochs done, as a fraction: the `epoch` of metrics.jsonl records. */
  private epochsDone(): number {
    return Math.round((this.position.step / this.plan.stepsPerEpoch) * 1e4) / 1e4;
  }

  private trainSeconds(): number {
    return this.previousSeconds + (this.startedAt ? (Date.now() - this.startedAt) / 1000 : 0);
  }

  private async saveLast(): Promise<void> {
    await this.checkFiniteWeights();
    await saveCheckpoint(this.lastDir, this.model, this.optimizer, this.state());
    this.saved = true;
    this.savedStep = this.position.step;
  }

  private result(status: TrainResult['status']): TrainResult {
    return {
      status, position: { ...this.position }, lastEval: this.lastEval, best: this.best, checkpoint: this.lastDir,
      trainSeconds: this.trainSeconds(), peakRssBytes: peakRssBytes(),
    };
  }

  /** The model being trained (for tests and notebooks). */
  get trainedModel(): tf.LayersModel {
    return this.model;
  }

  dispose(): void {
    this.evalModels.dispose();
    this.optimizer.dispose();
    if (this.ownsModel) this.model.dispose();
    this.unlock?.();
  }
}

/** Trains (or resumes) a run and disposes everything it built. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const trainer = await Trainer.create(opts);
  try {
    return await trainer.run();
  } finally {
    trainer.dispose();
  }
}
