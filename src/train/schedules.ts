// Learning-rate schedules as pure functions of the global step, so that a resumed run computes
// exactly the rate an uninterrupted one would. Every schedule is defined over the planned length
// of training (`totalSteps` = epochs x steps per epoch), never over `--max-steps`, which only
// decides where a run stops.

export const SCHEDULE_NAMES = ['step', 'exponential', 'cosine', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface ScheduleConfig {
  schedule: ScheduleName;
  /** Initial learning rate. */
  lr: number;
  /** step: fractions of training at which the rate is multiplied by `stepFactor` (the papers: 0.5, 0.75). */
  milestones: number[];
  /** step: the factor applied at each milestone (0.1 = divide by 10). */
  stepFactor: number;
  /** exponential: the factor applied once per epoch (Tiramisu: 0.995). */
  epochDecay: number;
}

export interface ScheduleClock {
  stepsPerEpoch: number;
  /** Planned length of training in steps. */
  totalSteps: number;
}

function checkClock(clock: ScheduleClock): void {
  if (!Number.isInteger(clock.stepsPerEpoch) || clock.stepsPerEpoch < 1) {
    throw new Error(`learning-rate schedule: stepsPerEpoch must be a positive integer, got ${clock.stepsPerEpoch}`);
  }
  if (!Number.isInteger(clock.totalSteps) || clock.totalSteps < 1) {
    throw new Error(`learning-rate schedule: totalSteps must be a positive integer, got ${clock.totalSteps}`);
  }
}

/** The global step at which each milestone takes effect (e.g. 0.5 of 300 epochs = the first step of epoch 150). */
export function milestoneSteps(milestones: readonly number[], totalSteps: number): number[] {
  return milestones.map((m) => Math.round(m * totalSteps));
}

/** The learning rate used for the update of global step `step` (counting from 0). */
export function learningRateAt(config: ScheduleConfig, clock: ScheduleClock, step: number): number {
  checkClock(clock);
  if (!Number.isInteger(step) || step < 0) throw new Error(`learning-rate schedule: step must be an integer >= 0, got ${step}`);
  switch (config.schedule) {
    case 'constant':
      return config.lr;
    case 'step': {
      const passed = milestoneSteps(config.milestones, clock.totalSteps).filter((s) => step >= s).length;
      return config.lr * config.stepFactor ** passed;
    }
    case 'exponential':
      return config.lr * config.epochDecay ** Math.floor(step / clock.stepsPerEpoch);
    case 'cosine': {
      const t = Math.min(step, clock.totalSteps) / clock.totalSteps;
      return config.lr * 0.5 * (1 + Math.cos(Math.PI * t));
    }
    default:
      throw new Error(`unknown learning-rate schedule '${(config as ScheduleConfig).schedule}'; expected one of ${SCHEDULE_NAMES.join(', ')}`);
  }
}
