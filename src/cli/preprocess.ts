// Turning a decoded image into the model's input the way the weights expect:
// resize the shorter side, center-crop (classification) or resize (segmentation), normalise.
import * as tf from '../tf';
import { DecodedImage } from '../data/image-file';

export interface PreprocessSpec {
  shape: [number, number, number];
  mean: number[];
  std: number[];
  resize?: number;
}

/** [1, H, W, C] float input for one image. */
export function imageToInput(img: DecodedImage, spec: PreprocessSpec): tf.Tensor4D {
  const [h, w, channels] = spec.shape;
  return tf.tidy(() => {
    const rgba = tf.tensor3d(img.rgba, [img.height, img.width, 4], 'int32');
    let x = tf.div(tf.cast(tf.slice(rgba, [0, 0, 0], [-1, -1, 3]), 'float32'), 255) as tf.Tensor3D;
    if (channels === 1) x = tf.mean(x, 2, true) as tf.Tensor3D;
    if (spec.resize) {
      const scale = spec.resize / Math.min(img.height, img.width);
      const rh = Math.max(h, Math.round(img.height * scale));
      const rw = Math.max(w, Math.round(img.width * scale));
      x = tf.image.resizeBilinear(x, [rh, rw], false, true);
      x = tf.slice(x, [Math.floor((rh - h) / 2), Math.floor((rw - w) / 2), 0], [h, w, -1]);
    } else {
      x = tf.image.resizeBilinear(x, [h, w], false, true);
    }
    const mean = spec.mean.slice(0, channels);
    const std = spec.std.slice(0, channels);
    return tf.expandDims(tf.div(tf.sub(x, mean), std), 0) as tf.Tensor4D;
  });
}
