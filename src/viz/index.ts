// Display helpers: Plotly charts (offline, plotly.js inlined) and raster
// figures drawn with pureimage, shown in tslab notebooks or saved as files.
export * from './color';
export { Raster, PixelBlock, TextOptions, measureText, fitText } from './raster';
export * from './input';
export * from './images';
export { SERIES_COLORS, niceStep } from './chart-frame';
export * from './bars';
export * from './lines';
export * from './plotly';
export * from './display';
export { FONT_FAMILY, fontPath } from './font';
