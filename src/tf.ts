// The one TensorFlow.js instance of the package: core ops plus the Layers API, with
// the chained ops (`x.reshape()`, `x.add(y)`) and a `ready()` that picks the backend.
// Everything in the package (and its users, through `require('densenet-zoo').tf`)
// goes through this module, so tensors never cross two copies of tfjs.
import * as core from '@tensorflow/tfjs-core';

export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
// The chained ops' types (their code is installed below); a type-only export, unlike a
// triple-slash reference, stays in tf.d.ts for every TypeScript version.
export type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';

/**
 * Resolves once a backend is active. When none has been chosen yet (neither `backend.init()`
 * nor `tf.setBackend()` ran), it activates the one `backend.init()` picks: DENSENET_BACKEND,
 * or the fastest installed. Otherwise it waits for the chosen one, as tfjs's `ready()` does.
 */
export async function ready(): Promise<void> {
  if (core.getBackend() !== undefined) return core.ready();
  // Required here, not at the top: src/backend imports this module.
  await (require('./backend') as typeof import('./backend')).ensure();
}

// tfjs-core ships its chained ops (dist/public/chained_ops) only as ES modules with
// extensionless imports, which require() cannot load, so they are installed here from
// the ops of the CommonJS bundle.
// test/front-door.test.ts checks this list against register_all_chained_ops.js.
type Op = (...args: unknown[]) => core.Tensor | core.Tensor[];
type Method = (this: core.Tensor, ...args: never[]) => unknown;

/** `x.name(...args)` is `tf.name(x, ...args)`. */
const SAME_NAME_OPS = (
  'abs acos acosh add all any argMax argMin asin asinh atan atan2 atanh avgPool batchNorm batchToSpaceND broadcastTo ' +
  'cast ceil clipByValue conv1d conv2d conv2dTranspose cos cosh cumprod cumsum depthToSpace depthwiseConv2d dilation2d ' +
  'div divNoNan dot elu equal erf euclideanNorm exp expandDims expm1 fft floor floorDiv gather greater greaterEqual ifft irfft ' +
  'isFinite isInf isNaN leakyRelu less lessEqual localResponseNormalization log log1p logSigmoid logSoftmax logSumExp ' +
  'logicalAnd logicalNot logicalOr logicalXor matMul max maxPool maximum mean min minimum mirrorPad mod mul neg norm ' +
  'notEqual oneHot onesLike pad pool pow prelu prod reciprocal relu relu6 reshape reverse rfft round rsqrt selu ' +
  'separableConv2d sigmoid sign sin sinh slice softmax softplus spaceToBatchND split sqrt square squaredDifference ' +
  'squeeze step stridedSlice sub sum tan tanh tile topk transpose unique unsortedSegmentSum unstack zerosLike'
).split(' ');

const tensors = (x: core.Tensor | core.Tensor[]) => (x instanceof core.Tensor ? [x] : x);

/** The chained ops that are not `tf.name(x, ...args)`, as tfjs-core defines them. */
const OTHER_METHODS: Record<string, Method> = {
  as1D() { return core.reshape(this, [this.size]); },
  as2D(rows: number, columns: number) { return core.reshape(this, [rows, columns]); },
  as3D(rows: number, columns: number, depth: number) { return core.reshape(this, [rows, columns, depth]); },
  as4D(rows: number, columns: number, depth: number, depth2: number) { return core.reshape(this, [rows, columns, depth, depth2]); },
  as5D(rows: number, columns: number, depth: number, depth2: number, depth3: number) {
    return core.reshape(this, [rows, columns, depth, depth2, depth3]);
  },
  asScalar() {
    core.util.assert(this.size === 1, () => 'The array must have only 1 element.');
    return core.reshape(this, []);
  },
  asType(dtype: core.DataType) { return core.cast(this, dtype); },
  flatten() { return core.reshape(this, [this.size]); },
  reshapeAs(x: core.Tensor) { return core.reshape(this, x.shape); },
  toBool() { return core.cast(this, 'bool'); },
  toFloat() { return core.cast(this, 'float32'); },
  toInt() { return core.cast(this, 'int32'); },
  concat(x: core.Tensor | core.Tensor[], axis?: number) { return core.concat([this, ...tensors(x)], axis); },
  stack(x: core.Tensor | core.Tensor[], axis?: number) { return core.stack([this, ...tensors(x)], axis); },
  where(condition: core.Tensor, x: core.Tensor) { return core.where(condition, this, x); },
  resizeBilinear(...args: never[]) { return (core.image.resizeBilinear as Op)(this, ...args); },
  resizeNearestNeighbor(...args: never[]) { return (core.image.resizeNearestNeighbor as Op)(this, ...args); },
};

function installChainedOps(): void {
  const prototype = core.Tensor.prototype as unknown as Record<string, Method>;
  const ops = core as unknown as Record<string, Op>;
  const methods: Record<string, Method> = { ...OTHER_METHODS };
  for (const name of SAME_NAME_OPS) methods[name] = function (...args) { return ops[name](this, ...args); };
  for (const [name, method] of Object.entries(methods)) {
    prototype[name] = function (...args) {
      this.throwIfDisposed();
      return method.apply(this, args);
    };
  }
}

installChainedOps();
