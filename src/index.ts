// The front door: `const { tf, backend, zoo } = require('densenet-zoo')`.
// `tf` is the package's one TensorFlow.js instance; use it for every tensor you pass in,
// and `await tf.ready()` (or `backend.init()`) before the first op: that picks the backend.
// Requiring this module loads no backend. The rest lives in subpath modules:
// densenet-zoo/data, /weights, /train, /measure and /notebook.
import * as tf from './tf';
import * as backend from './backend';
import * as zoo from './zoo';
import * as train from './train';

export { tf, backend, zoo, train };
export { evaluate } from './train/evaluate';
export { planMemory as plan, formatPlan } from './measure/planner';
export { summarize, formatSummary, blockChannels } from './models/summary';
export { countTrainableParams } from './zoo';

export type { BackendChoice } from './backend';
export type { EvalOptions, EvalResult } from './train/evaluate';
export type { MemoryPlan, PlanOptions } from './measure/planner';
export type { ModelSummary } from './models/summary';
