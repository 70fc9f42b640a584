// Writing an experiment's results: experiments/results/<name>.json with the command,
// backend, machine, date, seed and wall time, and <name>.md with its table.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PACKAGE_ROOT, writeFileAtomic } from '../src/weights';

export interface ExperimentResult {
  command: string;
  backend: string;
  seed: number | null;
  wallSeconds: number;
  data: unknown;
  /** Markdown table for the README. */
  table: string;
  notes?: string;
}

export const RESULTS_DIR = path.join(PACKAGE_ROOT, 'experiments', 'results');

export function machine(): string {
  return `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

export async function writeResultAsync(name: string, r: ExperimentResult, dir = RESULTS_DIR): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const record = { experiment: name, date: new Date().toISOString(), machine: machine(), ...r };
  await writeFileAtomic(path.join(dir, `${name}.json`), JSON.stringify(record, null, 2) + '\n');
  const md = `# ${name}\n\n${r.table}\n\n_${record.command} — ${record.backend}, ${record.machine}, ${record.date}, ` +
    `${r.wallSeconds.toFixed(1)} s${r.seed === null ? '' : `, seed ${r.seed}`}._${r.notes ? `\n\n${r.notes}` : ''}\n`;
  await writeFileAtomic(path.join(dir, `${name}.md`), md);
  process.stdout.write(`${r.table}\n\nwrote ${path.join(dir, `${name}.json`)}\n`);
}

export function writeResult(name: string, r: ExperimentResult): void {
  writeResultAsync(name, r).catch((err) => {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
