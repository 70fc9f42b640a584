// A tfjs backend that runs kernels on shapes alone: every output is a data-less tensor
// of the right shape and dtype. Running the real training step on it makes the engine
// count exactly the tensors the step allocates and frees, so tf.profile's peakBytes is
// the peak of a real run, obtained in milliseconds without memory or arithmetic.
import * as tf from '../tf';
import { BATCH_MOMENTS, BN_RELU, BN_RELU_GRAD, BN_RELU_POOLED_GRAD, concatShape, xPieces } from '../core/fused-kernels';
import { DROPOUT_MASK } from '../core/dropout-mask';

export const DRY_RUN = 'densenet-dry-run';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type ShapeRule = (inputs: Info[], attrs: Attrs, named: Record<string, Info>) => Array<{ shape: number[]; dtype?: tf.DataType }>;

const same: ShapeRule = (ins) => [{ shape: ins[0].shape }];
const broadcast: ShapeRule = (ins) => [{ shape: tf.backend_util.assertAndGetBroadcastShape(ins[0].shape, ins[1].shape) }];
const comparison: ShapeRule = (ins, attrs, named) => [{ ...broadcast(ins, attrs, named)[0], dtype: 'bool' }];

const reduce: ShapeRule = (ins, attrs) => {
  const shape = ins[0].shape;
  const axes = tf.util.parseAxisParam((attrs.axis ?? attrs.reductionIndices) as number | number[], shape);
  const out = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return [{ shape: attrs.keepDims ? out : out.filter((_, i) => !axes.includes(i)) }];
};

const conv: ShapeRule = (ins, a) => {
  const info = tf.backend_util.computeConv2DInfo(ins[0].shape as [number, number, number, number], ins[1].shape as [number, number, number, number],
    a.strides as [number, number], (a.dilations ?? 1) as number, a.pad as 'same', a.dimRoundingMode as 'floor' | undefined);
  return [{ shape: info.outShape }];
};

const pool: ShapeRule = (ins, a) => {
  const info = tf.backend_util.computePool2DInfo(ins[0].shape as [number, number, number, number], a.filterSize as [number, number],
    a.strides as [number, number], 1, a.pad as 'same', a.dimRoundingMode as 'floor' | undefined);
  return [{ shape: info.outShape }];
};

const matMul: ShapeRule = (ins, a) => {
  const [x, y] = [ins[0].shape, ins[1].shape];
  const m = a.transposeA ? x[x.length - 1] : x[x.length - 2];
  const n = a.transposeB ? y[y.length - 2] : y[y.length - 1];
  const batch = tf.backend_util.assertAndGetBroadcastShape(x.slice(0, -2), y.slice(0, -2));
  return [{ shape: [...batch, m, n] }];
};

/** The fused BN-ReLU gradients: dx in its splits, dGamma, dBeta. */
function bnReluGradShapes(named: Record<string, Info>, a: Attrs, kernel: string): Array<{ shape: number[] }> {
  const x = concatShape(xPieces(named, kernel));
  const channels = x[x.length - 1];
  const splits = (a.splits as number[] | undefined) ?? [channels];
  return [...splits.map((w) => ({ shape: [...x.slice(0, -1), w] })), { shape: [channels] }, { shape: [channels] }];
}

const RULES: Record<string, ShapeRule> = {
  Identity: same, Cast: (ins, a) => [{ shape: ins[0].shape, dtype: a.dtype as tf.DataType }],
  Exp: same, Floor: same, Log: same, Neg: same, Relu: same, Rsqrt: same, Sqrt: same, Square: same, Step: same, Abs: same,
  Sigmoid: same, Softmax: same, ZerosLike: same, OnesLike: same, FusedBatchNorm: same, Clone: same,
  Add: broadcast, Multiply: broadcast, Sub: broadcast, RealDiv: broadcast, SquaredDifference: broadcast, Maximum: broadcast,
  Minimum: broadcast, Pow: broadcast,
  GreaterEqual: comparison, Greater: comparison, Less: comparison, LessEqual: comparison, Equal: comparison,
  Select: (ins) => [{ shape: ins[1].shape, dtype: ins[1].dtype }],
  AddN: same,
  Sum: reduce, Mean: reduce, Max: reduce, Min: reduce, Prod: reduce,
  Conv2D: conv, FusedConv2D: conv,
  Conv2DBackpropInput: (_, a) => [{ shape: a.inputShape as number[] }],
  Conv2DBackpropFilter: (_, a) => [{ shape: a.filterShape as number[] }],
  MaxPool: pool, AvgPool: pool,
  MaxPoolGrad: (ins) => [{ shape: ins[1].shape }],
  AvgPoolGrad: (ins) => [{ shape: ins[1].shape }],
  BatchMatMul: matMul, _FusedMatMul: matMul,
  Concat: (ins, a) => {
    const axis = tf.util.parseAxisParam(a.axis as number, ins[0].shape)[0];
    const shape = [...ins[0].shape];
    shape[axis] = ins.reduce((s, t) => s + t.shape[axis], 0);
    return [{ shape }];
  },
  SplitV: (ins, a) => {
    const axis = tf.util.parseAxisParam(a.axis as number, ins[0].shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(ins[0] as unknown as tf.Tensor, a.numOrSizeSplits as number[], axis);
    return sizes.map((s) => ({ shape: ins[0].shape.map((d, i) => (i === axis ? s : d)) }));
  },
  Slice: (ins, a) => {
    const [begin, size] = tf.slice_util.parseSliceParams(ins[0] as unknown as tf.Tensor, a.begin as number[], a.size as number[]);
    void begin;
    return [{ shape: size }];
  },
  Reshape: (ins, a) => [{ shape: tf.util.inferFromImplicitShape(a.shape as number[], tf.util.sizeFromShape(ins[0].shape)) }],
  PadV2: (ins, a) => [{ shape: ins[0].shape.map((d, i) => d + (a.paddings as number[][])[i][0] + (a.paddings as number[][])[i][1]) }],
  Tile: (ins, a) => [{ shape: ins[0].shape.map((d, i) => d * (a.reps as number[])[i]) }],
  Transpose: (ins, a) => [{ shape: (a.perm as number[]).map((p) => ins[0].shape[p]) }],
  OneHot: (ins, a) => [{ shape: [...ins[0].shape, a.depth as number], dtype: a.dtype as tf.DataType }],
  [BN_RELU]: (_, a, named) => [{ shape: concatShape(xPieces(named, BN_RELU)) }],
  [BN_RELU_GRAD]: (_, a, named) => bnReluGradShapes(named, a, BN_RELU_GRAD),
  [BN_RELU_POOLED_GRAD]: (_, a, named) => bnReluGradShapes(named, a, BN_RELU_POOLED_GRAD),
  [DROPOUT_MASK]: (_, a) => [{ shape: a.shape as number[] }],
  [BATCH_MOMENTS]: (ins) => [{ shape: ins[0].shape.slice(-1) }, { shape: ins[0].shape.slice(-1) }],
};

/** Data-less storage: only the engine's bookkeeping of shapes and bytes is real. */
class DryRunBackend extends tf.KernelBackend {
  /** Reference counts per data id, as the real backends keep them: variables and clones share data. */
  private refs = new Map<object, number>();

  write(_values: unknown, _shape: number[]): object {
    const id = {};
    this.refs.set(id, 1);
    return id;
  }

  move(dataId: object, _values: unknown, _shape: number[], _dtype: tf.DataType, refCount: number): void {
    this.refs.set(dataId, refCount);
  }

  /** Values are never computed; readers (the profiler, a loss's dataSync) get an empty array. */
  readSync(): tf.backend_util.BackendValues {
    return new Float32Array(0);
  }

  async read(): Promise<tf.backend_util.BackendValues> {
    return new Float32Array(0);
  }

  disposeData(dataId: object, force = false): boolean {
    const count = this.refs.get(dataId);
    if (count === undefined) return true;
    if (!force && count > 1) {
      this.refs.set(dataId, count - 1);
      return false;
    }
    this.refs.delete(dataId);
    return true;
  }

  refCount(dataId: object): number {
    return this.refs.get(dataId) ?? 0;
  }

  incRef(dataId: object): void {
    this.refs.set(dataId, (this.refs.get(dataId) ?? 0) + 1);
  }

  numDataIds(): number {
    return this.refs.size;
  }

  memory(): { unreliable: boolean } {
    return { unreliable: true };
  }

  async time(f: () => void): Promise<tf.BackendTimingInfo> {
    f();
    return { kernelMs: 0 };
  }

  floatPrecision(): 32 {
    return 32;
  }

  epsilon(): number {
    return 1e-7;
  }

  dispose(): void {}

  output(shape: number[], dtype: tf.DataType): Info {
    return { dataId: this.write(null, shape), shape, dtype };
  }
}

const SHARES_INPUT = new Set(['Identity', 'Reshape', 'Cast']);

let registered = false;

/** Registers the dry-run backend and a shape rule for every kernel the zoo's training step uses. */
export function registerDryRunBackend(): void {
  if (registered) return;
  registered = true;
  tf.registerBackend(DRY_RUN, () => new DryRunBackend(), -1);
  for (const [kernelName, rule] of Object.entries(RULES)) {
    tf.registerKernel({
      kernelName,
      backendName: DRY_RUN,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const ins = Object.values(inputs) as Info[];
        const shapes = rule(ins, (attrs ?? {}) as Attrs, inputs as Record<string, Info>);
        const dtype = (o: { dtype?: tf.DataType }) => o.dtype ?? ins[0]?.dtype ?? 'float32';
        // As the CPU backends do: these give a view of their input's data, allocating nothing.
        if (SHARES_INPUT.has(kernelName) && dtype(shapes[0]) === ins[0].dtype) {
          (backend as DryRunBackend).incRef(ins[0].dataId);
          return { dataId: ins[0].dataId, shape: shapes[0].shape, dtype: ins[0].dtype };
        }
        const outs = shapes.map((o) => (backend as DryRunBackend).output(o.shape, dtype(o)));
        return outs.length === 1 ? outs[0] : outs;
      },
    });
  }
}
