// Fused BatchNorm-ReLU kernels. The composite-op versions in bn-relu-conv.ts allocate up
// to four full-size temporaries per call; these make one pass (forward) or two (backward)
// over the data with no temporaries, which is both the memory peak and most of the time
// of the dense layers' backward pass. The JS versions here serve the cpu backend (4-18x
// faster than its composite ops); scalar JS is slower than wasm's SIMD ops, so the wasm
// backend registers its own under the same names (src/backend). Other backends fall back
// to the composite ops.
import * as tf from '../tf';

export const BN_RELU = 'DenseNetBnRelu';
export const BN_RELU_GRAD = 'DenseNetBnReluGrad';
/** { x } -> [mean, biased variance] over every axis but the last, in one pass (backends that have it). */
export const BATCH_MOMENTS = 'DenseNetBatchMoments';

type Info = tf.TensorInfo;

/** How a backend exposes tensor memory to JS. */
interface MemoryAccess {
  /** Allocates every output before any view is taken (a heap that grows would detach earlier views). */
  alloc(shapes: number[][]): Info[];
  view(info: Info): Float32Array;
}

function cpuAccess(backend: unknown): MemoryAccess {
  const b = backend as { makeTensorInfo(shape: number[], dtype: string, values?: Float32Array): Info; data: { get(id: unknown): { values: Float32Array } } };
  return {
    alloc: (shapes) => shapes.map((s) => b.makeTensorInfo(s, 'float32', new Float32Array(tf.util.sizeFromShape(s)))),
    view: (info) => b.data.get(info.dataId).values,
  };
}

/** r = max(0, x * scale[c] + shift[c]). */
function bnReluKernel(access: (backend: unknown) => MemoryAccess): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const m = access(backend);
    const { x, scale, shift } = inputs as unknown as { x: Info; scale: Info; shift: Info };
    const [out] = m.alloc([x.shape]);
    const xv = m.view(x);
    const sv = m.view(scale);
    const hv = m.view(shift);
    const ov = m.view(out);
    const channels = sv.length;
    for (let i = 0; i < xv.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const y = xv[i + c] * sv[c] + hv[c];
        ov[i + c] = y > 0 ? y : 0;
      }
    }
    return out;
  };
}

/**
 * Backward of r = relu(BN_train(x)) given dr: dx, dGamma, dBeta. The ReLU mask is recomputed
 * from x, so the activation itself is not needed. Sums accumulate in float64.
 */
function bnReluGradKernel(access: (backend: unknown) => MemoryAccess): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const m = access(backend);
    const { x, dr, gamma, beta, mean, invStd } = inputs as unknown as Record<'x' | 'dr' | 'gamma' | 'beta' | 'mean' | 'invStd', Info>;
    const channels = gamma.shape[0];
    const [dx, dGamma, dBeta] = m.alloc([x.shape, [channels], [channels]]);
    const xv = m.view(x);
    const dv = m.view(dr);
    const gv = m.view(gamma);
    const bv = m.view(beta);
    const mv = m.view(mean);
    const iv = m.view(invStd);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      scale[c] = gv[c] * iv[c];
      shift[c] = bv[c] - mv[c] * scale[c];
    }
    const sumDy = new Float64Array(channels);
    const sumDyX = new Float64Array(channels);
    for (let i = 0; i < xv.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const xi = xv[i + c];
        if (xi * scale[c] + shift[c] > 0) {
          const d = dv[i + c];
          sumDy[c] += d;
          sumDyX[c] += d * xi;
        }
      }
    }
    const count = xv.length / channels;
    const a = new Float64Array(channels);
    const k = new Float64Array(channels);
    const dgv = m.view(dGamma);
    const dbv = m.view(dBeta);
    for (let c = 0; c < channels; c++) {
      const g = iv[c] * (sumDyX[c] - mv[c] * sumDy[c]);
      dgv[c] = g;
      dbv[c] = sumDy[c];
      const gOverM = (g * iv[c]) / count;
      a[c] = -scale[c] * gOverM;
      k[c] = scale[c] * (mv[c] * gOverM - sumDy[c] / count);
    }
    const out = m.view(dx);
    for (let i = 0; i < xv.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const xi = xv[i + c];
        const dy = xi * scale[c] + shift[c] > 0 ? dv[i + c] : 0;
        out[i + c] = dy * scale[c] + xi * a[c] + k[c];
      }
    }
    return [dx, dGamma, dBeta];
  };
}

/** Registers the JS fused kernels for the cpu backend (idempotent). */
export function registerFusedKernels(): void {
  for (const [kernelName, make] of [[BN_RELU, bnReluKernel], [BN_RELU_GRAD, bnReluGradKernel]] as const) {
    if (!tf.getKernel(kernelName, 'cpu')) tf.registerKernel({ kernelName, backendName: 'cpu', kernelFunc: make(cpuAccess) });
  }
}

export function hasFusedKernels(): boolean {
  return hasKernel(BN_RELU_GRAD);
}

/** Whether the current backend registers `kernelName`. */
export function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) != null;
}

/**
 * Gradient of the forward kernel, for autodiff through inference-mode layers (saliency maps,
 * input gradients); training uses the layers' own backward instead.
 */
function registerBnReluGradient(): void {
  if (tf.getGradient(BN_RELU)) return;
  tf.registerGradient({
    kernelName: BN_RELU,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [x, scale, r] = saved;
      const masked = () => tf.mul(dy as tf.Tensor, tf.step(r));
      return {
        x: () => tf.mul(masked(), scale),
        scale: () => tf.sum(tf.mul(masked(), x), [0, 1, 2]),
        shift: () => tf.sum(masked(), [0, 1, 2]),
      };
    },
  });
}

registerFusedKernels();
registerBnReluGradient();
