// `require('densenet-zoo/measure')`: the memory planner, the memory and speed benchmarks,
// the depth sweep and the per-kernel profile.
export * from './planner';
export * from './memory';
export * from './depth-sweep';
export * from './kernel-profile';
export * from './tensor-timeline';
// Memory measured in a fresh child process per mode, and the PyTorch reference run the same way.
export * from './child-process';
// A backend that only tracks shapes and bytes: plans a model's memory without running it.
export { DRY_RUN, registerDryRunBackend } from './dry-run-backend';
export { peakRssBytes } from '../process-memory';
export type { DenseNetArch } from '../models/densenet';
