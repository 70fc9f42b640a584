// Training and evaluation: recipes, optimizers, schedules, checkpoints, the trainer, reports.
export * from './recipes';
export * from './optimizers';
export * from './schedules';
export * from './data-spec';
export * from './checkpoint';
export * from './evaluate';
export * from './progress';
export * from './trainer';
export * from './report';
export * from './losses';
export * from './metrics';
export * from './held-out-figure';
export * from '../distributed';
