// Experiment "fashion-mnist": DenseNet-BC-100 (k=12, 768K parameters) on Fashion-MNIST with the
// paper's CIFAR recipe shortened to what one CPU core trains in about an hour and a quarter
// (2 epochs instead of 300, cosine instead of step decay, no augmentation), evaluated on the
// 10,000 test images; the weights ship as zoo.load('densenet-bc-100-k12', { weights: 'fashion-mnist' }).
//   npm run exp:fashion-mnist            (the full run; continues runs/exp-fashion-mnist if it holds one)
//   npm run exp:fashion-mnist -- --quick --out DIR
import { main } from './training-run';

main({
  name: 'fashion-mnist',
  model: 'densenet-bc-100-k12',
  dataset: 'fashion-mnist',
  tag: 'fashion-mnist',
  description: 'DenseNet-BC-100 (k=12) trained by this project on Fashion-MNIST (28x28 grey, 10 classes): npm run exp:fashion-mnist',
  metric: 'top1',
  trainFlags: [
    '--recipe', 'densenet-cifar', '--epochs', '2', '--batch', '64', '--lr', '0.1', '--schedule', 'cosine', '--no-augment',
    '--eval-every', '200', '--eval-limit', '2000', '--log-every', '50', '--checkpoint-every', '200', '--seed', '1',
  ],
  quickFlags: [
    '--recipe', 'densenet-cifar', '--epochs', '0.01', '--max-steps', '3', '--batch', '8', '--schedule', 'cosine',
    '--no-augment', '--eval-every', '2', '--eval-limit', '32', '--log-every', '1', '--seed', '1',
  ],
  anchor: { label: 'DenseNet-BC 768K, standard augmentation', value: 0.954, source: 'the Fashion-MNIST benchmark table' },
});
