#!/usr/bin/env bash
# CPU-scale reproduction of two state-tracking claims of the DeltaProduct paper, one command:
#
#   bash scripts/reproduce_state_tracking_cpu.sh [output folder, default outputs/repro_cpu]
#
#  1. parity (Z_2): DeltaNet (n_h = 1) with eigenvalues in [-1, 1] learns it and extrapolates
#     beyond the training length; with eigenvalues in [0, 1] it does not learn it at all;
#  2. S_3 word problem: one layer of DeltaProduct with n_h = 2 learns it; n_h = 1 does not.
#
# The models and data are smaller than the paper's (see README, "State tracking"): parity at
# training length 128 with d_model 32 and one head; S_3 at training length 16 with d_model 64,
# four heads and no short convolution. Batch 64, at most 5000 (parity) / 3000 (S_3) steps,
# validation every 250 steps, training stops once val/seq_acc > 0.99. On one CPU thread the
# four runs and two evaluations took about 30 minutes (see README for the measured times).
#
# REPRO_TRAIN_OVERRIDES / REPRO_EVAL_OVERRIDES (space-separated Hydra overrides) are appended to
# every train.py / eval.py command; the test suite uses them to run the script on tiny settings.
#
# Results: <out>/<run>/ (checkpoints, csv/metrics.csv, train.log) and
# <out>/eval_parity, <out>/eval_s3 (metrics.csv, prefix_accuracy.csv, length_extrapolation.png).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-outputs/repro_cpu}"
python="${PYTHON:-python}"
mkdir -p "$out"

# One thread: on small CPUs two OpenMP threads per process are many times slower than one.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

read -r -a extra_train <<< "${REPRO_TRAIN_OVERRIDES:-}"
read -r -a extra_eval <<< "${REPRO_EVAL_OVERRIDES:-}"
common=(trainer=cpu data.batch_size=64 +trainer.val_check_interval=250 callbacks.progress_bar.refresh_rate=500)

fail() {  # fail LOG: show the end of a failed step's log and stop
    echo "   FAILED; the end of $1:" >&2
    tail -n 20 "$1" >&2
    exit 1
}

run() {  # run NAME EXPERIMENT OVERRIDES...
    local name="$1" exp="$2"
    shift 2
    if [[ -f "$out/$name/checkpoints/last.ckpt" && -f "$out/$name/done" ]]; then
        echo "== $name: done already ($out/$name), skipping"
        return
    fi
    echo "== $name: training (log: $out/$name/train.log)"
    mkdir -p "$out/$name"
    local start=$SECONDS
    "$python" train.py "experiment=$exp" "${common[@]}" "paths.output_dir=$out/$name" "$@" "${extra_train[@]}" \
        > "$out/$name/train.log" 2>&1 || fail "$out/$name/train.log"
    echo "   finished in $((SECONDS - start)) s"
    grep -E "^ +(val|test)/(acc|seq_acc) " "$out/$name/train.log" || true
    touch "$out/$name/done"
}

parity=(model.d_model=32 model.layer.n_heads=1 model.layer.n_householder=1 +trainer.max_steps=5000)
run parity_deltanet_neg state_parity "${parity[@]}" model.layer.allow_neg_eigval=true
run parity_deltanet_pos state_parity "${parity[@]}" model.layer.allow_neg_eigval=false

s3=(data.train_length=16 data.test_length=64 model.d_model=64 model.layer.use_short_conv=false +trainer.max_steps=3000)
run s3_deltaproduct_nh2 state_s3 "${s3[@]}" model.layer.n_householder=2
run s3_deltanet_nh1 state_s3 "${s3[@]}" model.layer.n_householder=1

echo "== evaluating length extrapolation"
"$python" eval.py experiment=state_parity \
    "ckpt_paths=[$out/parity_deltanet_neg/checkpoints/last.ckpt,$out/parity_deltanet_pos/checkpoints/last.ckpt]" \
    'labels=["DeltaNet [-1,1]","DeltaNet [0,1]"]' lengths=[128,256,512,1024,2048] num_eval=1000 \
    "paths.output_dir=$out/eval_parity" "${extra_eval[@]}" > "$out/eval_parity.log" 2>&1 || fail "$out/eval_parity.log"
"$python" eval.py experiment=state_s3 \
    "ckpt_paths=[$out/s3_deltaproduct_nh2/checkpoints/last.ckpt,$out/s3_deltanet_nh1/checkpoints/last.ckpt]" \
    'labels=["DeltaProduct n_h=2 [-1,1]","DeltaNet n_h=1 [-1,1]"]' lengths=[16,32,64,128] num_eval=1000 \
    "paths.output_dir=$out/eval_s3" "${extra_eval[@]}" > "$out/eval_s3.log" 2>&1 || fail "$out/eval_s3.log"
sed -n '/^label/,/^$/p' "$out/eval_parity.log" "$out/eval_s3.log"
echo "results in $out/eval_parity and $out/eval_s3"
