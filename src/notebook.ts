// The module notebooks load: `const nb = require('densenet-zoo/notebook')`.
// It bundles the display helpers and the live training display; it does not
// load the model zoo, so a notebook that only draws charts starts quickly.
export * from './viz';
export { NotebookReporter, NotebookReporterOptions, InPlaceDisplay, notebookReporter } from './train/notebook-progress';
