// Public surface: `const { tf, backend, zoo } = require('densenet-zoo')`.
// `tf` is the package's one TensorFlow.js instance; use it for every tensor you pass in.
import * as tf from './tf';
import * as backend from './backend';
import * as zoo from '../zoo';
import * as weights from './weights';
import * as data from './data';
import { summarize, formatSummary, blockChannels } from './models/summary';

export { tf, backend, zoo, weights, data, summarize, formatSummary, blockChannels };
