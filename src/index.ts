// Public surface: `const { tf, backend, zoo } = require('densenet-zoo')`.
import * as tf from './tf';
import * as backend from './backend';
import * as zoo from '../zoo';

export { tf, backend, zoo };
