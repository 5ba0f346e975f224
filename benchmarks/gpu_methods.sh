#!/usr/bin/env bash
# Issue 12's MNIST→USPS runs on a lent GPU machine (bare: Python 3.12 and its own PyTorch, no network),
# every (variant, seed) its own process, side by side on the one GPU (each step is launch-bound, so they
# overlap). tllib's recipe as in docs/benchmarks.md; the variants are fixed here, before any result.
#   here:  python benchmarks/gpu_check.py --bundle .gpu   (wheels), plus .gpu/mirror laid out like
#          shared/datasets with MNIST/raw/*.gz and USPS/*.bz2
#   there: bash benchmarks/gpu_methods.sh OUT_DIR 3k12k|20k SECONDS_PER_RUN
set -u
out=${1:?output folder}; batch=${2:?3k12k or 20k}; limit=${3:-480}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 UDA_DATA_MIRROR=$PWD/.gpu/mirror
R='batch_size: 128, normalize: half, network: {name: lenet_tllib, bottleneck: 256, discriminator: tllib}, optimizer: {lr: 0.01, momentum: 0.9, weight_decay: 0.001, nesterov: true}'
mkdir -p /tmp/rows
run() {  # tag label alpha variant seed (in the background)
  local name=$1-$2-s$5
  timeout "$limit" python3 benchmarks/methods.py --experiment mnist_usps --image-size 28 --device cuda --threads 1 \
    --steps $(( $3 * 1000 )) --label "$2" --seeds "$5" --methods "$4" \
    --train "{$R, schedule: {name: dann, alpha: $3, beta: 0.75}}" --keep "/tmp/keep-$name" \
    --out "/tmp/rows/$name.json" >"/tmp/log-$name" 2>&1 || echo "FAILED ($?): $name"
}
merge() {  # one file back: every row landed so far (at most 8 files come back from the machine)
  python3 -c "import json,glob,sys; json.dump([r for f in sorted(glob.glob('/tmp/rows/*.json')) for r in json.load(open(f))], open(sys.argv[1],'w'), indent=1)" "$out/rows.json"
}
(while sleep 20; do merge; done) &  # rows that landed come back even if the machine's limit cuts the rest
loop=$! pids=()
for seed in 0 1 2; do
  if [ "$batch" = 3k12k ]; then
    run cdan_e_mcc gpu-3k 3 cdan:entropy=true,gamma=3,mcc_weight=1 $seed & pids+=($!)
    run cdan_e_mcc gpu-12k 12 cdan:entropy=true,gamma=12,mcc_weight=1 $seed & pids+=($!)
    run cdan_e gpu-12k 12 cdan:entropy=true,gamma=12 $seed & pids+=($!)
    run mcc gpu-12k 12 mcc $seed & pids+=($!)
  else  # 20,000 steps: 40 % of tllib's 50,000 (20 epochs of 2,500 iterations)
    run cdan_e_mcc gpu-20k 20 cdan:entropy=true,gamma=20,mcc_weight=1 $seed & pids+=($!)
    run cdan_e gpu-20k 20 cdan:entropy=true,gamma=20 $seed & pids+=($!)
    run mcc gpu-20k 20 mcc $seed & pids+=($!)
  fi
done
wait "${pids[@]}"; kill $loop
merge
tail -n 4 /tmp/log-* >"$out/logs.txt"
