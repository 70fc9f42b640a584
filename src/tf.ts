// The one TensorFlow.js instance of the package: core ops plus the Layers API.
// Everything in the package (and its users, through `require('densenet-zoo').tf`)
// goes through this module, so tensors never cross two copies of tfjs.
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
