// `require('densenet-zoo/measure')`: the memory planner, the memory and speed benchmarks,
// the depth sweep and the per-kernel profile.
export * from './planner';
export * from './memory';
export * from './depth-sweep';
export * from './kernel-profile';
