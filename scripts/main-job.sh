#!/usr/bin/env bash
# The main job: on a fresh Debian/Ubuntu machine, a real training of a DenseNet-BC on
# Fashion-MNIST in a few minutes (progress bar on a terminal), an evaluation of the saved
# checkpoint on the whole test set, and a short report (accuracy, time, memory, learning curve,
# confusion matrix) in runs/main-job/report.md.
#
# Settings (environment): OUT (run folder, default runs/main-job), FASHION_MNIST_DIR (default
# /usr/share/datasets/fashion-mnist), DEPTH and GROWTH (DenseNet-BC variant, default 16 and 12:
# 3 blocks of 2 bottleneck layers, 44k parameters), EPOCHS (default: about three minutes of
# training: one epoch on a native backend (torch-cpu, tensorflow), 0.35 of an epoch (21,000
# images) on the single-threaded WebAssembly one), BATCH (64), LR (0.1), AUGMENT (0: for a run
# this short the papers' crop+flip costs accuracy; 1 turns it on), DROP (dropout rate, 0: the
# paper's 0.2 after every conv, its rule for training without augmentation, costs this one-epoch
# run 8 points: 81.07% against 89.25% test accuracy), DENSENET_BACKEND (default: the
# fastest installed; as root on Debian/Ubuntu, libtorch is installed for it). The recipe is the paper's CIFAR one (SGD, Nesterov 0.9, weight decay
# 1e-4) with a cosine schedule over the short run.
# Run it again after Ctrl-C and it continues from the checkpoint; after a finished run it only
# evaluates and reports again. Start over with: rm -rf runs/main-job
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/main-job}
DATA=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
DEPTH=${DEPTH:-16}
GROWTH=${GROWTH:-12}
EPOCHS=${EPOCHS:-}
AUGMENT=${AUGMENT:-0}
DROP=${DROP:-0}
BATCH=${BATCH:-64}
LR=${LR:-0.1}
MODEL=densenet-bc-100-k12
CLI=(node dist/src/cli/main.js)

have_data() {
  [ -e "$DATA/train-images-idx3-ubyte.gz" ] || [ -e "$DATA/train-images-idx3-ubyte" ]
}

# 1. The dataset: Debian's package, installed here when we may; otherwise say exactly what to do.
if ! have_data; then
  if [ "$DATA" = /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "main job: installing the Fashion-MNIST dataset (apt-get install dataset-fashion-mnist)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq dataset-fashion-mnist > /dev/null 2>&1 || {
      apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist > /dev/null
    }
  fi
fi
if ! have_data; then
  {
    echo "main job: Fashion-MNIST is not in $DATA."
    PUT="Put"
    if [ "$DATA" = /usr/share/datasets/fashion-mnist ]; then
      echo "  On Debian/Ubuntu, install it:  sudo apt-get install dataset-fashion-mnist"
      echo "  and run this script again."
      PUT="Elsewhere, put"
    fi
    echo "  $PUT the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,"
    echo "  t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (from"
    echo "  https://github.com/zalandoresearch/fashion-mnist, data/fashion/) in a folder DIR and run:"
    echo "  FASHION_MNIST_DIR=DIR bash scripts/main-job.sh"
  } >&2
  exit 1
fi

# 2. The build (npm ci builds through `prepare`; this covers a checkout where it did not run).
if [ ! -e dist/src/cli/main.js ]; then
  echo "main job: building (npm run build)"
  npm run build --silent
fi

# 3. The fast CPU backend: torch-cpu needs libtorch (Debian's libtorch-dev) and the addon built
# against it. As root with apt-get, install and build it; otherwise say how, and go on with wasm.
chosen_backend() {
  "${CLI[@]}" doctor --json 2> /dev/null | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).chosen))'
}
BACKEND=$(chosen_backend)
if [ "$BACKEND" = wasm ] && [ -z "${DENSENET_BACKEND:-}" ] && [ -z "${DENSENET_TORCH_ADDON:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "main job: installing libtorch for the torch-cpu backend (apt-get install libtorch-dev g++ make; a few minutes, once)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends libtorch-dev g++ make > /dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends libtorch-dev g++ make > /dev/null 2>&1; }; } &&
      node scripts/build-native.js || true
    BACKEND=$(chosen_backend)
  fi
  if [ "$BACKEND" = wasm ]; then
    echo "main job: training on wasm (single-threaded WebAssembly). For the faster native torch-cpu backend:"
    echo "  sudo apt-get install libtorch-dev g++ make && node scripts/build-native.js   (see native/build-native.log if it fails)"
  fi
fi
echo "main job: backend $BACKEND"

# 4. Train, for about three minutes on the backend that will run.
if [ -z "$EPOCHS" ]; then
  case "$BACKEND" in
    wasm | cpu) EPOCHS=0.35 ;;
    *) EPOCHS=1 ;;
  esac
fi
# A run folder with a checkpoint is continued (or, when finished, left as it is).
RESUME=()
if [ -e "$OUT/last/checkpoint.json" ] || [ -e "$OUT/last.old/checkpoint.json" ]; then
  RESUME=(--resume)
  echo "main job: $OUT holds a run; continuing it"
fi
TRAIN=("${CLI[@]}" train "$MODEL" --depth "$DEPTH" --growth "$GROWTH" --dataset fashion-mnist --data "$DATA"
  --recipe densenet-cifar --schedule cosine --epochs "$EPOCHS" --batch "$BATCH" --lr "$LR" --eval-every 100
  --eval-limit 1000 --log-every 20 --drop-rate "$DROP" --out "$OUT")
[ "$AUGMENT" = 1 ] || TRAIN+=(--no-augment)
"${TRAIN[@]}" "${RESUME[@]}"

# 5. Evaluate the saved checkpoint on the whole test set, from disk.
EVAL=("${CLI[@]}" eval "$MODEL" --weights "$OUT/last" --dataset fashion-mnist --data "$DATA" --json)
"${EVAL[@]}" > "$OUT/eval.json"

# 6. The report.
"${CLI[@]}" report "$OUT" --eval "$OUT/eval.json" \
  --title "Main job: DenseNet-BC (depth $DEPTH, k $GROWTH) on Fashion-MNIST" \
  --command "${TRAIN[*]}" "${EVAL[*]} > $OUT/eval.json" "node dist/src/cli/main.js report $OUT --eval $OUT/eval.json"
node -e '
  const e = require(process.argv[1]);
  console.log(`main job: test accuracy ${(e.metrics.top1 * 100).toFixed(2)}% (top-5 ${(e.metrics.top5 * 100).toFixed(2)}%) on ${e.count} test images; report: ${process.argv[2]}`);
' "$(pwd)/$OUT/eval.json" "$OUT/report.md"
