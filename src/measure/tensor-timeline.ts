// `bench memory --timeline`: every tensor one training step creates and frees, so the peak
// can be read by what is alive at it: which layer made each tensor, in which pass, with
// which kernel. It follows the engine's own bookkeeping (tf.memory().numBytes, as tf.profile
// does, though tf.profile samples it only after each kernel and this after every allocation,
// so it also sees what a kernel makes and frees inside itself), and beside it the bytes of
// distinct buffers: tfjs
// counts a tensor that shares another's buffer (a reshape, or the clone the tape keeps of
// an op's saved input) once more, though no memory is allocated for it.
import * as tf from '../tf';

/** Where a tensor was made: the pass, the innermost layer or named scope, the kernels. */
export interface TensorOrigin {
  phase: 'forward' | 'backward' | 'other';
  /** Innermost layer being applied (forward) or named tidy scope (a dense block's backward); '' when none. */
  scope: string;
  /** The kernels running when it was made, outermost first ("Relu>Identity": ReLU's output as the tape keeps it). */
  kernels: string;
  shape: number[];
}

export interface LiveGroup extends TensorOrigin {
  count: number;
  /** As tfjs counts them: every tensor, views included. */
  bytes: number;
}

export interface TensorTimeline {
  /** Bytes alive before the step (weights, optimizer slots, the batch). */
  baselineBytes: number;
  peakBytes: number;
  /** Bytes of distinct buffers at the same moment. */
  peakBufferBytes: number;
  /** Of the bytes alive before the step, those released by the peak (weights an update replaced). */
  releasedBeforePeakBytes: number;
  /** Allocation events in the step, and the one at which the peak fell. */
  events: number;
  peakEvent: number;
  /** Bytes alive after each allocation or release, down-sampled to at most `points` samples. */
  curve: Array<{ event: number; bytes: number; bufferBytes: number; phase: TensorOrigin['phase'] }>;
  /** What was made during the step and alive at its peak, largest groups first. */
  atPeak: LiveGroup[];
  /**
   * The peak of what is allocated (distinct buffers), which may fall elsewhere than tfjs's count's,
   * and what holds it: each buffer counted once, in the group of the first tensor that holds it.
   */
  allocatedPeak: { bytes: number; event: number; atPeak: LiveGroup[] };
}

interface Tracked extends TensorOrigin {
  /** As tfjs counts it. */
  bytes: number;
  dataId: object;
}

/** One tensor made or released; `buffer`: bytes of a buffer allocated (+) or freed (-) with it. */
type Event = { record: number; sign: 1 | -1; buffer: number };

interface EngineInternals {
  state: { scopeStack: Array<{ name: string }>; tensorInfo: Map<object, unknown> };
  trackTensor(t: tf.Tensor, backend: unknown): void;
  disposeTensor(t: tf.Tensor): void;
  runKernelFunc(params: { kernelName?: string }): unknown;
}

const PASSES = new Set(['forward', 'backward']);

function bytesOf(t: tf.Tensor): number {
  return t.dtype === 'string' || t.dtype === 'complex64' ? 0 : t.size * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : 1);
}

/** What a hook sees of one tensor made or released: whether its buffer was allocated or freed with it. */
type TensorHook = (t: tf.Tensor, bufferChange: number) => void;

/**
 * Runs `step` with the engine's tensor tracking observed: `made` after each tensor is tracked,
 * `released` after each is disposed. The engine methods are wrapped on the instance only for
 * the duration of the call and restored afterwards, also when it throws.
 */
async function observeTensors(made: TensorHook, released: TensorHook, step: () => void | Promise<void>): Promise<void> {
  const engine = tf.engine() as unknown as EngineInternals;
  const buffers = engine.state.tensorInfo;
  const { trackTensor, disposeTensor } = engine;
  engine.trackTensor = function (t, backend) {
    const fresh = !buffers.has(t.dataId);
    trackTensor.call(this, t, backend);
    made(t, fresh ? bytesOf(t) : 0);
  };
  engine.disposeTensor = function (t) {
    if (!buffers.has(t.dataId)) return disposeTensor.call(this, t); // the engine ignores it too
    disposeTensor.call(this, t);
    released(t, buffers.has(t.dataId) ? 0 : -bytesOf(t));
  };
  try {
    await step();
  } finally {
    // The instance properties shadowed the prototype's: removing them restores it exactly.
    for (const key of ['trackTensor', 'disposeTensor'] as const) delete (engine as unknown as Record<string, unknown>)[key];
  }
}

/**
 * The most bytes of distinct buffers alive at any moment of `step`, above those alive when it
 * starts. tfjs's own count (tf.memory, tf.profile's peakBytes) adds a tensor that shares another's
 * buffer once more, though nothing is allocated for it: the clones the gradient tape keeps of
 * saved inputs, reshapes.
 */
export async function peakBufferGrowth(step: () => void | Promise<void>): Promise<number> {
  let bytes = 0;
  let peak = 0;
  const change: TensorHook = (_, delta) => {
    bytes += delta;
    if (bytes > peak) peak = bytes;
  };
  await observeTensors(change, change, step);
  return peak;
}

/** Runs `step` recording every tensor made and released, and where. */
export async function recordTimeline(step: () => void | Promise<void>, points = 2000): Promise<TensorTimeline> {
  const engine = tf.engine() as unknown as EngineInternals;
  const baselineBytes = tf.memory().numBytes;
  // A variable keeps its id when assigned a new buffer, so each track is its own record.
  const records: Tracked[] = [];
  const current = new Map<number, number>();
  const events: Event[] = [];
  const kernelStack: string[] = [];
  const layerStack: string[] = [];

  const origin = (t: tf.Tensor): TensorOrigin => {
    const scopes = engine.state.scopeStack.map((s) => s.name);
    const pass = [...scopes].reverse().find((n) => PASSES.has(n));
    const named = [...scopes].reverse().find((n) => !PASSES.has(n) && n !== 'unnamed scope');
    return {
      phase: (pass as TensorOrigin['phase'] | undefined) ?? 'other',
      scope: (pass === 'forward' ? layerStack[layerStack.length - 1] : named) ?? '',
      kernels: kernelStack.join('>'),
      shape: t.shape.slice(),
    };
  };

  const made: TensorHook = (t, buffer) => {
    current.set(t.id, records.push({ ...origin(t), bytes: bytesOf(t), dataId: t.dataId }) - 1);
    events.push({ record: current.get(t.id)!, sign: 1, buffer });
  };
  const released: TensorHook = (t, buffer) => {
    // Made before the step (the weights an optimizer update replaces): a record in phase 'other'.
    const record = current.get(t.id) ?? records.push({ phase: 'other', scope: 'before the step', kernels: '', shape: t.shape.slice(), bytes: bytesOf(t), dataId: t.dataId }) - 1;
    current.delete(t.id);
    events.push({ record, sign: -1, buffer });
  };
  const { runKernelFunc } = engine;
  const layerApply = tf.layers.Layer.prototype.apply;
  engine.runKernelFunc = function (params) {
    kernelStack.push(params.kernelName ?? 'custom-op');
    try {
      return runKernelFunc.call(this, params);
    } finally {
      kernelStack.pop();
    }
  };
  tf.layers.Layer.prototype.apply = function (this: tf.layers.Layer, ...args: Parameters<typeof layerApply>) {
    layerStack.push(this.name);
    try {
      return layerApply.apply(this, args);
    } finally {
      layerStack.pop();
    }
  } as typeof layerApply;
  try {
    await observeTensors(made, released, step);
  } finally {
    delete (engine as unknown as Record<string, unknown>).runKernelFunc;
    tf.layers.Layer.prototype.apply = layerApply;
  }
  return summarise(events, records, baselineBytes, points);
}

/** Replays the events: the curve, the peak, and what was alive at it. */
function summarise(events: Event[], records: Tracked[], baselineBytes: number, points: number): TensorTimeline {
  let bytes = 0;
  let bufferBytes = 0;
  let released = 0;
  let peak = { event: -1, bytes: 0, bufferBytes: 0, released: 0 };
  let allocated = { event: -1, bytes: 0 };
  const made = new Set<number>();
  const curve: TensorTimeline['curve'] = [];
  const every = Math.max(1, Math.ceil(events.length / points));
  events.forEach((e, i) => {
    const t = records[e.record];
    bytes += e.sign * t.bytes;
    bufferBytes += e.buffer;
    if (e.sign === 1) made.add(e.record);
    else if (!made.has(e.record)) released += t.bytes;
    if (bytes > peak.bytes) peak = { event: i, bytes, bufferBytes, released };
    if (bufferBytes > allocated.bytes) allocated = { event: i, bytes: bufferBytes };
    if (i % every === 0) curve.push({ event: i, bytes: baselineBytes + bytes, bufferBytes: baselineBytes + bufferBytes, phase: t.phase });
  });

  return {
    baselineBytes,
    peakBytes: baselineBytes + peak.bytes,
    peakBufferBytes: baselineBytes + peak.bufferBytes,
    releasedBeforePeakBytes: peak.released,
    events: events.length,
    peakEvent: peak.event,
    curve,
    atPeak: liveGroups(events, records, peak.event, false),
    allocatedPeak: { bytes: baselineBytes + allocated.bytes, event: allocated.event, atPeak: liveGroups(events, records, allocated.event, true) },
  };
}

/** What was made during the step and alive after event `at`, grouped by origin; `buffersOnce`: a shared buffer counts once. */
function liveGroups(events: Event[], records: Tracked[], at: number, buffersOnce: boolean): LiveGroup[] {
  const alive = new Set<number>();
  for (const e of events.slice(0, at + 1)) {
    if (e.sign === 1) alive.add(e.record);
    else alive.delete(e.record);
  }
  const groups = new Map<string, LiveGroup>();
  const counted = new Set<object>();
  for (const record of alive) {
    const { bytes: b, dataId, ...where } = records[record];
    const key = JSON.stringify(where);
    const g = groups.get(key) ?? { ...where, count: 0, bytes: 0 };
    g.count += 1;
    if (!buffersOnce || !counted.has(dataId)) g.bytes += b;
    counted.add(dataId);
    groups.set(key, g);
  }
  return [...groups.values()].filter((g) => g.bytes > 0 || !buffersOnce).sort((a, b) => b.bytes - a.bytes);
}

/** The live groups at the peak summed by (pass, kernels): which kinds of tensor hold the memory. */
export function peakByRole(timeline: TensorTimeline): Array<{ phase: string; kernels: string; bytes: number; count: number }> {
  const roles = new Map<string, { phase: string; kernels: string; bytes: number; count: number }>();
  for (const g of timeline.atPeak) {
    const key = `${g.phase} ${g.kernels}`;
    const r = roles.get(key) ?? { phase: g.phase, kernels: g.kernels, bytes: 0, count: 0 };
    r.bytes += g.bytes;
    r.count += g.count;
    roles.set(key, r);
  }
  return [...roles.values()].sort((a, b) => b.bytes - a.bytes);
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/** Markdown: for each mode, the peak and what holds it, by group and by role. */
export function timelineReport(r: { model: string; batch: number; backend: string; naive: TensorTimeline; efficient: TensorTimeline }, top: number): string {
  const part = (mode: 'naive' | 'efficient') => {
    const t = r[mode];
    const made = t.atPeak.reduce((sum, g) => sum + g.bytes, 0);
    return [
      `### ${mode}: peak ${mb(t.peakBytes)} MB (${mb(t.peakBytes / r.batch)} MB per image), of which ${mb(t.baselineBytes)} MB before the step; ` +
        `distinct buffers at the peak ${mb(t.peakBufferBytes)} MB; ${mb(t.releasedBeforePeakBytes)} MB of what was there before released by the peak; peak at event ${t.peakEvent} of ${t.events}`,
      '',
      '| pass | layer or scope | kernels | shape | tensors | MB | share of the step\'s |',
      '|---|---|---|---|---|---|---|',
      ...t.atPeak.slice(0, top).map((g) => `| ${g.phase} | ${g.scope || '-'} | ${g.kernels || '-'} | ${g.shape.join('x')} | ${g.count} | ${mb(g.bytes)} | ${((100 * g.bytes) / made).toFixed(1)}% |`),
      `| | ${Math.max(0, t.atPeak.length - top)} more groups | | | | ${mb(t.atPeak.slice(top).reduce((s, g) => s + g.bytes, 0))} | |`,
      '',
      '| pass | kernels (role) | tensors | MB |',
      '|---|---|---|---|',
      ...peakByRole(t).slice(0, top).map((x) => `| ${x.phase} | ${x.kernels || '-'} | ${x.count} | ${mb(x.bytes)} |`),
      '',
      `Allocated (distinct buffers): peak ${mb(t.allocatedPeak.bytes)} MB (${mb((t.allocatedPeak.bytes - t.baselineBytes) / r.batch)} MB per image above the ${mb(t.baselineBytes)} MB before the step) at event ${t.allocatedPeak.event}, held by:`,
      '',
      '| pass | layer or scope | kernels | shape | tensors | MB |',
      '|---|---|---|---|---|---|',
      ...t.allocatedPeak.atPeak.slice(0, top).map((g) => `| ${g.phase} | ${g.scope || '-'} | ${g.kernels || '-'} | ${g.shape.join('x')} | ${g.count} | ${mb(g.bytes)} |`),
      `| | ${Math.max(0, t.allocatedPeak.atPeak.length - top)} more groups | | | | ${mb(t.allocatedPeak.atPeak.slice(top).reduce((s, g) => s + g.bytes, 0))} |`,
    ].join('\n');
  };
  return [`${r.model}, batch ${r.batch}, on ${r.backend}: tensors alive at the peak of one training step`, '', part('naive'), '', part('efficient')].join('\n');
}
