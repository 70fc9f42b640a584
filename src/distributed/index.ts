// Data-parallel training: the c10d communicator, the gradient and BatchNorm reductions, the local
// launcher and the torchrun variables. Public through densenet-zoo/train.
export { CollectiveError, Communicator, communicatorStatus, C10D_ADDON_PATH } from './communicator';
export type { JoinOptions, ReduceOp } from './communicator';
export { BUCKET_FLOATS, DataParallel, shardRange } from './data-parallel';
export type { DataParallelOptions } from './data-parallel';
export { freePort, launchWorkers } from './launcher';
export type { LaunchOptions } from './launcher';
export { threadsPerWorker, worldFromEnv, WORLD_VARIABLES } from './world';
export type { World } from './world';
