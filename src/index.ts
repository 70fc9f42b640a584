// Public surface: `const { tf, backend, zoo } = require('densenet-zoo')`.
// `tf` is the package's one TensorFlow.js instance; use it for every tensor you pass in.
import * as tf from './tf';
import * as backend from './backend';
import * as zoo from './zoo';
import * as weights from './weights';
import * as data from './data';
import * as train from './train';
import { summarize, formatSummary, blockChannels } from './models/summary';
import { buildDenseNet } from './models/densenet';
import { buildFCDenseNet } from './models/fc-densenet';
import { planMemory, formatPlan } from './measure/planner';
import { benchMemory, benchSpeed, measureMode } from './measure/memory';
import { depthSweep, densenetBC } from './measure/depth-sweep';

export {
  tf, backend, zoo, weights, data, train, summarize, formatSummary, blockChannels, buildDenseNet, buildFCDenseNet,
  planMemory, formatPlan, benchMemory, benchSpeed, measureMode, depthSweep, densenetBC,
};
