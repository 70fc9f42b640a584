#!/usr/bin/env node
// The `densenet` command line. Each command lives in its own module; this file wires
// them to commander and turns every error into one clear line and a non-zero exit.
import { Command } from 'commander';
import { registerZooCommands } from './zoo-commands';
import { registerTrainCommands } from './train-commands';
import { registerBenchCommands, registerPlanCommand } from './bench-commands';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('densenet')
    .description('DenseNet, DenseNet-BC and FC-DenseNet (Tiramisu) on TensorFlow.js')
    .option('--backend <name>', 'tfjs backend: tensorflow-gpu, tensorflow, wasm, cpu (default: best installed; env DENSENET_BACKEND)')
    .showHelpAfterError();
  registerZooCommands(program);
  registerTrainCommands(program);
  registerBenchCommands(program);
  registerPlanCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) return e.exitCode ?? 1; // commander already printed help or the usage error
    process.stderr.write(`densenet: error: ${e.message ?? String(err)}\n`);
    if (process.env.DENSENET_DEBUG) console.error(err);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
