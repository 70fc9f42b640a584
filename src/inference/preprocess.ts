// Turning an image into the model's input the way the weights expect: resize the shorter side and
// center-crop (classification), or resize (segmentation), then normalise per channel.
import * as tf from '../tf';
import { DecodedImage, decodeImageFile } from '../data/image-file';

export interface Preprocessing {
  /** [H, W, C] the model takes (segmentation models take any size; this is their default). */
  inputShape: [number, number, number];
  /** Per-channel normalisation of [0, 1] pixel values. */
  mean: number[];
  std: number[];
  /** Classification: resize the shorter side to this before a center crop of inputShape. */
  resize?: number;
}

/**
 * An image: decoded pixels, a PNG/JPEG file path, or a tensor of pixel values in [0, 255]
 * shaped [H, W, C] or [1, H, W, C] with C = 1, 3 or 4 (as tf.browser.fromPixels gives).
 */
export type ImageInput = DecodedImage | string | tf.Tensor3D | tf.Tensor4D;

/** The image as [H, W, 3] floats in [0, 1] (alpha dropped); tensors are checked, not trusted. */
function pixels(input: ImageInput): tf.Tensor3D {
  if (typeof input === 'string') return pixels(decodeImageFile(input));
  if (input instanceof tf.Tensor) {
    const t = input.rank === 4 && input.shape[0] === 1 ? tf.squeeze(input, [0]) : input;
    const [, , c] = t.shape;
    if (t.rank !== 3 || ![1, 3, 4].includes(c as number)) {
      throw new Error(`image tensor of shape [${input.shape}]: expected [H, W, C] or [1, H, W, C] pixels with C = 1, 3 or 4`);
    }
    const rgb = c === 4 ? tf.slice(t, [0, 0, 0], [-1, -1, 3]) : c === 1 ? tf.tile(t, [1, 1, 3]) : t;
    return tf.div(tf.cast(rgb, 'float32'), 255) as tf.Tensor3D;
  }
  const rgba = tf.tensor3d(input.rgba, [input.height, input.width, 4], 'int32');
  return tf.div(tf.cast(tf.slice(rgba, [0, 0, 0], [-1, -1, 3]), 'float32'), 255) as tf.Tensor3D;
}

/** Height and width of an image input (decoding a file once to find out). */
export function imageSize(input: DecodedImage | tf.Tensor): [number, number] {
  if (input instanceof tf.Tensor) {
    const s = input.rank === 4 ? input.shape.slice(1) : input.shape;
    return [s[0], s[1]];
  }
  return [input.height, input.width];
}

/** [1, H, W, C] normalised input for one image; `shape` is the size to produce ([h, w, c]). */
export function imageToInput(input: ImageInput, spec: Preprocessing): tf.Tensor4D {
  const [h, w, channels] = spec.inputShape;
  return tf.tidy(() => {
    let x = pixels(input);
    const [ih, iw] = x.shape;
    if (channels === 1) x = tf.mean(x, 2, true) as tf.Tensor3D;
    if (spec.resize) {
      const scale = spec.resize / Math.min(ih, iw);
      const rh = Math.max(h, Math.round(ih * scale));
      const rw = Math.max(w, Math.round(iw * scale));
      x = tf.image.resizeBilinear(x, [rh, rw], false, true);
      x = tf.slice(x, [Math.floor((rh - h) / 2), Math.floor((rw - w) / 2), 0], [h, w, -1]);
    } else if (ih !== h || iw !== w) {
      x = tf.image.resizeBilinear(x, [h, w], false, true);
    }
    const mean = spec.mean.slice(0, channels);
    const std = spec.std.slice(0, channels);
    return tf.expandDims(tf.div(tf.sub(x, mean), std), 0) as tf.Tensor4D;
  });
}
