// The two kernel initialisations of the reference implementations: torchvision's DenseNet draws
// He-normal (kaiming_normal_, untruncated), the FC-DenseNet authors' Lasagne code He-uniform.
// tfjs's heUniform is Lasagne's; its heNormal truncates at two standard deviations without
// correcting the scale (a spread of about 0.88 of He's), so models built for he-normal have their
// conv kernels redrawn from the untruncated distribution (redrawHeNormalKernels).
import * as tf from '../tf';

export type KernelInit = 'he-normal' | 'he-uniform';
export const KERNEL_INITS: readonly KernelInit[] = ['he-normal', 'he-uniform'];

/** The tfjs initializer a layer is constructed with. */
export function tfjsKernelInitializer(kind: KernelInit): 'heNormal' | 'heUniform' {
  return kind === 'he-uniform' ? 'heUniform' : 'heNormal';
}

/** fan_in of a conv kernel [kh, kw, in, out], as tfjs and torch count it. */
function fanIn(shape: number[]): number {
  return shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/** Every conv kernel of the model drawn again from N(0, 2 / fan_in), untruncated. */
export function redrawHeNormalKernels(model: tf.LayersModel): void {
  for (const w of model.trainableWeights) {
    const shape = w.shape as number[];
    if (shape.length !== 4 || !/(^|\/)kernel$/.test(w.originalName)) continue;
    tf.tidy(() => {
      w.write(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn(shape))));
    });
  }
}
