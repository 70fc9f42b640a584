// Experiment "params": every zoo model's trainable parameters and multiply-adds, beside
// the papers' numbers (shared/reference/numbers.md). Writes experiments/results/params.{json,md}.
//   npm run exp:params
import { backend, summarize, tf, zoo } from '../src';
import { writeResult } from './results';

const { init } = backend;

/** Published sizes, rounded as printed: the DenseNet paper's Table 2 (CIFAR), the Tiramisu paper, torchvision's docs (ImageNet). */
const PAPER: Record<string, string> = {
  densenet121: '8.0M', densenet169: '14.1M', densenet201: '20.0M', densenet264: '33.3M', densenet161: '28.7M',
  'densenet-40-k12': '1.0M', 'densenet-100-k12': '7.0M', 'densenet-100-k24': '27.2M', 'densenet-bc-100-k12': '0.8M',
  'densenet-bc-250-k24': '15.3M', 'densenet-bc-190-k40': '25.6M', 'fc-densenet56': '1.5M', 'fc-densenet67': '3.5M', 'fc-densenet103': '9.4M',
};

async function main(): Promise<void> {
  const start = Date.now();
  const chosen = await init('cpu', { log: null });
  const rows = zoo.list().map((name) => {
    const model = zoo.create(name);
    const s = summarize(model);
    const params = zoo.countTrainableParams(model);
    model.dispose();
    const reference = zoo.info(name).params;
    return { model: name, input: s.inputShape.join('x'), params, reference, exact: params === reference, paper: PAPER[name], gmacs: s.totalFlops / 1e9 };
  });
  const table = [
    '| model | input | params (ours) | exact reference | match | published | GMACs |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.input} | ${r.params.toLocaleString('en-US')} | ${r.reference.toLocaleString('en-US')} | ` +
      `${r.exact ? 'exact' : 'DIFFERS'} | ${r.paper} | ${r.gmacs.toFixed(2)} |`),
  ].join('\n');
  writeResult('params', {
    command: 'npm run exp:params', backend: chosen.name, seed: null, wallSeconds: (Date.now() - start) / 1000,
    data: rows, table, notes: 'Reference counts: numbers.md (torchvision and the reference Lasagne code). FC-DenseNet papers round up (1.5M, 3.5M, 9.4M).',
  });
  tf.disposeVariables();
  if (rows.some((r) => !r.exact)) process.exitCode = 1;
}

main();
