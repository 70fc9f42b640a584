// What a training run tells the user and writes down: a progress bar on a terminal (epoch, step,
// loss, accuracy, images/s, ETA), one display redrawn in place in a notebook (notebook-progress.ts),
// plain lines otherwise, and OUT/metrics.jsonl with one JSON object per logged step and per evaluation.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'fs';
import * as cliProgress from 'cli-progress';
import { inTslabKernel } from '../viz/display';
import { EvalReport, Reporter, StepReport, formatDuration, formatEpochs, formatEval, formatStep } from './format';
import { notebookReporter } from './notebook-progress';
import { tempNameFor } from '../weights/atomic';

export { EvalReport, Reporter, StepReport, formatDuration, formatEval, formatMetrics, formatStep } from './format';

/** Plain lines, for logs and pipes. */
export class LineReporter implements Reporter {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}
  start(): void {}
  step(r: StepReport, log: boolean): void {
    if (log) this.write(formatStep(r));
  }
  evalProgress(): void {}
  eval(r: EvalReport): void {
    this.write(formatEval(r));
  }
  note(text: string): void {
    this.write(text);
  }
  stop(): void {}
}

/** A cli-progress bar over the run's steps, with evaluation results and notes printed above it. */
export class BarReporter implements Reporter {
  private readonly multi: cliProgress.MultiBar;
  private bar?: cliProgress.SingleBar;
  private last?: StepReport;

  constructor(stream: NodeJS.WriteStream = process.stdout) {
    this.multi = new cliProgress.MultiBar({
      stream, hideCursor: true, fps: 5, barsize: 12, forceRedraw: true,
      // About 80 columns; during an evaluation its progress takes the place of the ETA.
      format: 'epoch {epoch} |{bar}| step {value}/{total} loss {loss} acc {acc} {ips} img/s {eta_text}',
    });
  }

  private payload(r: StepReport | undefined, phase = '') {
    return {
      epoch: r ? `${r.epoch}/${formatEpochs(r.epochs)}` : '-',
      loss: r ? r.loss.toFixed(3) : '-',
      acc: r ? `${(r.accuracy * 100).toFixed(1)}%` : '-',
      ips: r ? r.imagesPerSecond.toFixed(r.imagesPerSecond < 10 ? 1 : 0) : '-',
      eta_text: phase || `ETA ${r ? formatDuration(r.etaSeconds) : '?'}`,
    };
  }

  start(firstStep: number, stopStep: number): void {
    this.bar = this.multi.create(stopStep, firstStep, this.payload(undefined));
  }

  step(r: StepReport): void {
    this.last = r;
    this.bar?.update(r.step, this.payload(r));
  }

  evalProgress(done: number, total: number): void {
    this.bar?.update(this.payload(this.last, `evaluating ${done}/${total}`));
  }

  eval(r: EvalReport): void {
    this.bar?.update(this.payload(this.last));
    this.multi.log(formatEval(r) + '\n');
  }

  note(text: string): void {
    this.multi.log(text + '\n');
  }

  stop(): void {
    this.multi.stop();
  }
}

/** One display redrawn in place in a tslab notebook, the bar on a terminal, lines elsewhere. */
export function defaultReporter(stream: NodeJS.WriteStream = process.stdout): Reporter {
  if (inTslabKernel()) return notebookReporter();
  return stream.isTTY ? new BarReporter(stream) : new LineReporter((l) => stream.write(l + '\n'));
}

/** A reporter that prints nothing (tests, library use). */
export const silentReporter: Reporter = {
  start() {}, step() {}, evalProgress() {}, eval() {}, note() {}, stop() {},
};

export interface MetricsRecord {
  type: 'train' | 'eval' | 'summary';
  step: number;
  epoch: number;
  [key: string]: unknown;
}

/** OUT/metrics.jsonl: appended line by line, so a killed run keeps everything logged before. */
export class MetricsLog {
  constructor(readonly file: string) {}

  append(record: MetricsRecord): void {
    appendFileSync(this.file, JSON.stringify(record) + '\n');
  }

  /** Keeps only the records up to `step` (a resumed run rewrites what came after its checkpoint). */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = readFileSync(this.file, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as MetricsRecord).step <= step;
      } catch {
        return false; // a line cut short by a kill
      }
    });
    // A temporary file renamed over the log: a kill mid-write cannot lose the records kept.
    const tmp = tempNameFor(this.file);
    writeFileSync(tmp, kept.map((l) => l + '\n').join(''));
    renameSync(tmp, this.file);
  }

  read(): MetricsRecord[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => {
      try {
        return [JSON.parse(l) as MetricsRecord];
      } catch {
        return [];
      }
    });
  }
}
