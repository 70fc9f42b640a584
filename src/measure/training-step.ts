// One synthetic training step (forward, backward, optimizer update) of a model, used by
// the benchmarks: random inputs and labels of the model's shapes, softmax cross entropy
// (per pixel for segmentation models), SGD with Nesterov momentum. Each call waits for the
// result with an async read, which every backend allows (a GPU backend's sync read may not).
import * as tf from '../tf';

export interface StepHarness {
  step: () => Promise<void>;
  predict: () => Promise<void>;
  dispose: () => void;
}

export function trainingHarness(model: tf.LayersModel, batch: number, seed = 1): StepHarness {
  const inputShape = (model.inputs[0].shape as number[]).slice(1);
  const outShape = (model.outputs[0].shape as number[]).slice(1);
  const numClasses = outShape[outShape.length - 1];
  const x = tf.randomNormal([batch, ...inputShape], 0, 1, 'float32', seed);
  const labels = tf.tidy(() => tf.oneHot(tf.randomUniform([batch, ...outShape.slice(0, -1)], 0, numClasses, 'int32', seed), numClasses));
  const optimizer = tf.train.momentum(0.01, 0.9, true);
  return {
    step: async () => {
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
      await loss?.data();
      loss?.dispose();
    },
    predict: async () => {
      const y = model.predict(x) as tf.Tensor;
      await y.data();
      y.dispose();
    },
    dispose: () => {
      tf.dispose([x, labels]);
      optimizer.dispose();
    },
  };
}
