// A fully convolutional model takes inputs of other sizes through a copy built for that size:
// tfjs layers models have fixed input shapes, but the weights do not depend on the size.
import * as tf from '../tf';
import type { InputShape } from '../models/common';

/** Builds the same architecture, fresh, for an input size. */
export type ModelFactory = (inputShape: InputShape) => tf.LayersModel;

/**
 * Hands out a model for a given input size: the model itself when the size matches, otherwise
 * a copy built for that size with the model's current weights copied in.
 */
export class ModelForShape {
  private readonly copies = new Map<string, tf.LayersModel>();
  /** Copies whose weights are the model's current ones. */
  private readonly current = new Set<string>();

  constructor(private readonly model: tf.LayersModel, private readonly build: ModelFactory) {}

  /** The model's weights have changed: copies take them again on their next use. */
  invalidate(): void {
    this.current.clear();
  }

  get(shape: InputShape): tf.LayersModel {
    const own = (this.model.inputs[0].shape as number[]).slice(1);
    const key = shape.join('x');
    if (own.join('x') === key) return this.model;
    let copy = this.copies.get(key);
    if (!copy) {
      copy = this.build(shape);
      this.copies.set(key, copy);
    }
    if (!this.current.has(key)) {
      copy.setWeights(this.model.getWeights());
      this.current.add(key);
    }
    return copy;
  }

  dispose(): void {
    this.current.clear();
    for (const m of this.copies.values()) m.dispose();
    this.copies.clear();
  }
}
