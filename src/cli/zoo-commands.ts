// `zoo list`, `summary`, `convert`, `predict` and `doctor`.
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import * as tf from '../tf';
import * as backend from '../backend';
import * as zoo from '../zoo';
import { formatSummary, summarize } from '../models/summary';
import { decodeImageFile } from '../data/image-file';
import { writeSegmentationOverlay } from '../inference/predict';
import { isCheckpointDir, loadCheckpointModel } from '../train/checkpoint';
import { saveLayersModelToFile } from '../weights/file-io';
import { addArchitectureFlags, architectureOptions, ArchitectureFlags, bnStatsOption, parseInputShape, parsePositiveInt } from './model-flags';
import type { InferenceStats } from '../layers/unit-variables';
import { loadTorchvisionStateDict } from '../weights/torchvision';
import { readSafetensors } from '../weights/safetensors';
import { parseKeyRule, readPytorchCheckpoint } from '../weights/pytorch';
import { WEIGHTS_CARD_KEY } from '../weights/tfjs-weights';
import { communicatorStatus } from '../distributed/communicator';

export async function initBackend(program: Command): Promise<backend.BackendChoice> {
  return backend.init(program.opts().backend);
}

interface ConvertFlags {
  arch: string;
  out: string;
  classes?: number;
  input?: [number, number, number];
  keyMap: string[];
  mean?: number[];
  std?: number[];
}

const collect = (value: string, previous: string[]) => [...previous, value];

function parseFloats(flag: string) {
  return (text: string): number[] => {
    const values = text.split(',').map((v) => Number(v.trim()));
    if (values.some((v) => !Number.isFinite(v))) throw new Error(`${flag} '${text}': expected comma-separated numbers, e.g. 0.485,0.456,0.406`);
    return values;
  };
}

/** A --key-map value: one rule, or a JSON file holding a list of rules. */
function keyRulesFrom(value: string): string[] {
  if (!/\.json$/i.test(value)) return [value];
  let rules: unknown;
  try {
    rules = JSON.parse(fs.readFileSync(value, 'utf8'));
  } catch (err) {
    throw new Error(`--key-map ${value}: not a readable JSON file (${(err as Error).message})`);
  }
  if (!Array.isArray(rules) || !rules.every((r) => typeof r === 'string')) {
    throw new Error(`--key-map ${value}: expected a JSON list of "from_regex=to" strings`);
  }
  return rules;
}

/** A checkpoint folder of `densenet train` (its model, normalisation and classes), or the zoo model with weights. */
async function loadForPrediction(name: string, weights?: string, bnStats?: InferenceStats): Promise<zoo.ZooModel> {
  if (!weights || !isCheckpointDir(weights)) return zoo.load(name, { weights, batchNorm: bnStats });
  const { model, state } = await loadCheckpointModel(weights, undefined, { batchNorm: bnStats });
  if (state.model.name !== name) {
    model.dispose();
    throw new Error(`${weights} holds a ${state.model.name} model, not ${name}`);
  }
  return model;
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : text()) + '\n');
}

export function registerZooCommands(program: Command): void {
  const zooCmd = program.command('zoo').description('the models of the zoo');
  zooCmd
    .command('list')
    .description('list every model: task, parameters, paper')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const rows = zoo.list().map((n) => zoo.info(n)).map((e) => ({
        name: e.name, task: e.task, params: e.params, inputShape: e.input.shape, numClasses: e.numClasses,
        weights: e.weights.map((w) => w.tag), paper: e.paper.reference,
      }));
      print(!!opts.json, rows, () => rows
        .map((r) => `${r.name.padEnd(20)} ${r.task.padEnd(14)} ${r.params.toLocaleString('en-US').padStart(11)} params  ` +
          `${r.inputShape.join('x').padEnd(10)} ${r.weights.length ? `weights: ${r.weights.join(', ')}` : ''}`)
        .join('\n'));
    });

  addArchitectureFlags(program
    .command('summary <name>')
    .description('channels, layers, resolution, parameters and FLOPs per block and transition')
    .option('--input <HxWxC>', 'input size', parseInputShape)
    .option('--classes <n>', 'number of classes', parsePositiveInt('--classes'))
    .option('--json', 'machine-readable output'))
    .action(async (name: string, opts: ArchitectureFlags & { input?: [number, number, number]; classes?: number; json?: boolean }) => {
      zoo.info(name);
      await initBackend(program);
      const model = zoo.create(name, { ...architectureOptions(opts), inputShape: opts.input, numClasses: opts.classes });
      const s = summarize(model);
      model.dispose();
      print(!!opts.json, s, () => formatSummary(s));
    });

  addArchitectureFlags(program
    .command('convert <weights>')
    .description('convert DenseNet weights (torchvision/timm .safetensors, or a PyTorch .pth/.pt checkpoint) into a tfjs model directory')
    .requiredOption('--arch <name>', 'zoo architecture the weights belong to')
    .requiredOption('--out <dir>', 'output directory (model.json + weights)')
    .option('--classes <n>', 'classes of the weights (default: the record\'s)', parsePositiveInt('--classes'))
    .option('--input <HxWxC>', 'input size the weights were trained at', parseInputShape)
    .option('--key-map <rule>', 'PyTorch checkpoints: rename keys to torchvision\'s with from_regex=to (repeatable, applied in order), or a JSON file of such rules', collect, [])
    .option('--mean <list>', 'per-channel mean the weights expect on [0, 1] pixels, stored with them', parseFloats('--mean'))
    .option('--std <list>', 'per-channel std the weights expect, stored with them', parseFloats('--std')))
    .action(async (file: string, opts: ArchitectureFlags & ConvertFlags) => {
      zoo.info(opts.arch);
      if ((opts.mean === undefined) !== (opts.std === undefined)) throw new Error('--mean and --std go together');
      await initBackend(program);
      const model = zoo.create(opts.arch, { ...architectureOptions(opts), numClasses: opts.classes, inputShape: opts.input });
      try {
        const keyMap = opts.keyMap.flatMap(keyRulesFrom).map(parseKeyRule);
        const format = zoo.resolveWeights(opts.arch, file).format;
        if (format === 'tfjs') throw new Error(`${file}: expected a .safetensors or PyTorch .pth/.pt file`);
        const state = format === 'pytorch' ? await readPytorchCheckpoint(file, keyMap) : await readSafetensors(file);
        const report = loadTorchvisionStateDict(model, state, { skipClassifier: false, adaptInputChannels: false });
        if (opts.mean && opts.std) model.setUserDefinedMetadata({ [WEIGHTS_CARD_KEY]: { normalization: { mean: opts.mean, std: opts.std } } });
        await saveLayersModelToFile(model, opts.out);
        const under = 'foundUnder' in state && state.foundUnder ? ` (found under '${state.foundUnder}')` : '';
        process.stdout.write(`wrote ${path.join(opts.out, 'model.json')}: ${report.loaded.length} tensors from ${file}${under}\n`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('predict <model> <image>')
    .description('classify an image, or segment it (with --out overlay.png), with a zoo model and weights or a trained checkpoint')
    .option('--weights <w>', 'weight tag, .safetensors file, tfjs model.json, or a checkpoint folder of `densenet train`')
    .option('--top <k>', 'number of classes to print', parsePositiveInt('--top'), 5)
    .option('--out <file.png>', 'segmentation: write the input, the prediction and their overlay to this PNG')
    .addOption(bnStatsOption())
    .option('--json', 'machine-readable output')
    .action(async (name: string, image: string, opts: { weights?: string; top: number; out?: string; json?: boolean; bnStats?: InferenceStats }) => {
      zoo.info(name);
      const decoded = decodeImageFile(image);
      if (!opts.weights) {
        const tags = zoo.info(name).weights.map((w) => w.tag);
        process.stderr.write(`densenet: warning: no --weights: ${name} has random weights, so its predictions mean nothing` +
          `${tags.length ? `; give --weights ${tags.join(' or ')}` : ''}, a weights file or a checkpoint folder\n`);
      }
      await initBackend(program);
      const model = await loadForPrediction(name, opts.weights, opts.bnStats);
      try {
        if (model.card.task === 'segmentation') {
          const seg = await model.segment(decoded);
          const overlay = opts.out ? writeSegmentationOverlay(opts.out, decoded, seg, model.card, `${name}: ${path.basename(image)}`) : null;
          const classes = seg.fractions
            .map((f, c) => ({ class: c, name: seg.classNames[c], fraction: f }))
            .filter((x) => x.fraction > 0)
            .sort((a, b) => b.fraction - a.fraction);
          print(!!opts.json, { model: name, image, weights: opts.weights ?? null, height: seg.height, width: seg.width, classes, overlay }, () =>
            [...classes.map((x) => `${(x.fraction * 100).toFixed(2).padStart(6)}%  ${x.name} (${x.class})`),
              overlay ? `overlay: ${overlay}` : 'pass --out overlay.png for a colour-coded overlay'].join('\n'));
          return;
        }
        if (opts.out) throw new Error(`--out writes segmentation overlays; ${name} is a classification model`);
        const top = await model.classify(decoded, { topK: opts.top });
        print(!!opts.json, { model: name, image, weights: opts.weights ?? null, top }, () =>
          top.map((t) => `${(t.probability * 100).toFixed(2).padStart(6)}%  ${t.name} (${t.class})`).join('\n'));
      } finally {
        model.dispose();
      }
    });

  program
    .command('doctor')
    .description('which tfjs backends are installed, which one is chosen, and versions')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const chosen = await backend.init(program.opts().backend, { log: null });
      const installed = backend.listCandidates().map((c) => {
        let available: boolean;
        try {
          backend.choose(c.name, { env: {} });
          available = true;
        } catch {
          available = false;
        }
        return { name: c.name, description: c.description, available, install: c.install };
      });
      const webgpu = await backend.webgpuProbe();
      const dataParallel = communicatorStatus();
      const info = { node: process.version, tfjs: tf.version_core, chosen: chosen.name, backends: installed, webgpu, dataParallel };
      const limits = webgpu.adapter
        ? `; maxStorageBufferBindingSize ${webgpu.adapter.limits.maxStorageBufferBindingSize}, maxBufferSize ${webgpu.adapter.limits.maxBufferSize}`
        : '';
      print(!!opts.json, info, () => [
        `node ${info.node}, @tensorflow/tfjs-core ${info.tfjs}`,
        ...installed.map((b) => `${b.name === chosen.name ? '*' : ' '} ${b.name.padEnd(15)} ${b.available ? 'installed    ' : 'not installed'} ${b.description}` +
          (b.available ? '' : `  (${b.install})`)),
        `webgpu adapter: ${webgpu.reason}${limits}`,
        `data-parallel (train --nproc): ${dataParallel.available ? 'c10d/Gloo communicator built' : dataParallel.reason}`,
      ].join('\n'));
    });
}
