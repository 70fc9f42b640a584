// The module notebooks load: `const nb = require('densenet-zoo/notebook')`.
// It bundles the display helpers; it does not load the model zoo, so a
// notebook that only draws charts starts quickly.
export * from './viz';
