#!/usr/bin/env bash
# Reproduction of the state-tracking claims of the DeltaProduct and negative-eigenvalue papers,
# one command per scale:
#
#   bash scripts/reproduce_state_tracking.sh paper [output folder, default outputs/repro_paper]
#   bash scripts/reproduce_state_tracking.sh cpu   [output folder, default outputs/repro_cpu]
#
# Claims (../shared/DESIGN.md §3, README "State tracking"):
#  1. parity (Z_2): DeltaNet (n_h = 1) with eigenvalues in [-1, 1] learns it and extrapolates
#     beyond the training length; with eigenvalues in [0, 1] it does not learn it at all;
#  2. S_3 word problem: one layer of DeltaProduct with n_h = 2 learns it; n_h = 1 does not;
#  3. S_5 word problem (paper scale only): one layer needs n_h = 4; n_h = 3 does not suffice.
#
# paper: the experiment files (configs/experiment/state_*.yaml: one layer, d_model 128, training
#        length 128, test length 512, 100k training sequences, batch 256, AdamW lr 1e-3, stop at
#        99% validation sequence accuracy), with 8 heads for the S_3 and S_5 layers as in the
#        DeltaProduct repository's S_3 command (the block's default is 4; on CPU, S_3 at length
#        32 was learned with 8 heads and not with 4). Six trainings and three evaluations.
#        Meant for a GPU; it refuses to start without one unless REPRO_ALLOW_CPU=1.
# cpu:   smaller models and data that one CPU thread trains in 20-30 minutes in all (four
#        trainings, two evaluations, no S_5): parity at length 128 with d_model 32 and one head;
#        S_3 at length 16 with d_model 64, four heads and no short convolution. Batch 64, at most
#        5000 (parity) / 3000 (S_3) steps, validation every 250 steps.
#
# A run that finished is skipped when the script is called again; a run that was interrupted
# resumes from its newest checkpoint (<out>/<run>/checkpoints/last.ckpt, written every 1000 steps,
# or preempted.ckpt, written when the run is stopped with SIGTERM or SIGUSR1).
#
# REPRO_TRAIN_OVERRIDES / REPRO_EVAL_OVERRIDES (space-separated Hydra overrides) are appended to
# every train.py / eval.py command; the test suite uses them to run the script on tiny settings.
#
# Results: <out>/<run>/ (checkpoints, csv/metrics.csv, train.log) and <out>/eval_<task>/
# (metrics.csv, prefix_accuracy.csv, length_extrapolation.png).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bash scripts/reproduce_state_tracking.sh paper|cpu [output folder]"
scale="${1:-}"
case "$scale" in
    paper | cpu) ;;
    *)
        echo "error: the first argument (scale) must be 'paper' or 'cpu', got '${scale}'" >&2
        echo "$usage" >&2
        exit 2
        ;;
esac
out="${2:-outputs/repro_$scale}"
python="${PYTHON:-python}"

read -r -a extra_train <<< "${REPRO_TRAIN_OVERRIDES:-}"
read -r -a extra_eval <<< "${REPRO_EVAL_OVERRIDES:-}"

if [[ "$scale" == paper ]]; then
    if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        if [[ "${REPRO_ALLOW_CPU:-0}" != 1 ]]; then
            echo "error: the paper-scale runs need a CUDA GPU (torch.cuda.is_available() is False)." >&2
            echo "On a CPU use 'bash scripts/reproduce_state_tracking.sh cpu', or set REPRO_ALLOW_CPU=1 to run anyway (very slow)." >&2
            exit 2
        fi
    fi
    common=(callbacks.progress_bar.refresh_rate=100)
    eval_common=()
else
    # One thread: on small CPUs two OpenMP threads per process are many times slower than one.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    common=(trainer=cpu data.batch_size=64 trainer.val_check_interval=250 callbacks.progress_bar.refresh_rate=500)
    eval_common=(num_eval=1000)
fi
mkdir -p "$out"

fail() {  # fail LOG: show the end of a failed step's log and stop
    echo "   FAILED; the end of $1:" >&2
    tail -n 20 "$1" >&2
    exit 1
}

run() {  # run NAME EXPERIMENT OVERRIDES...
    local name="$1" exp="$2"
    shift 2
    local dir="$out/$name" resume=()
    if [[ -f "$dir/done" ]]; then
        echo "== $name: done already ($dir), skipping"
        return
    fi
    mkdir -p "$dir"
    local ckpt="$dir/checkpoints/last.ckpt"
    if [[ -f "$dir/checkpoints/preempted.ckpt" && ( ! -f "$ckpt" || "$dir/checkpoints/preempted.ckpt" -nt "$ckpt" ) ]]; then
        ckpt="$dir/checkpoints/preempted.ckpt"  # written on SIGTERM / SIGUSR1
    fi
    if [[ -f "$ckpt" ]]; then
        echo "== $name: resuming from $ckpt (log: $dir/train.log)"
        resume=("ckpt_path=$ckpt")
        echo "---- resumed" >> "$dir/train.log"
    else
        echo "== $name: training (log: $dir/train.log)"
        : > "$dir/train.log"
    fi
    local start=$SECONDS
    "$python" train.py "experiment=$exp" "${common[@]}" "paths.output_dir=$dir" "$@" "${resume[@]}" "${extra_train[@]}" \
        >> "$dir/train.log" 2>&1 || fail "$dir/train.log"
    echo "   finished in $((SECONDS - start)) s"
    grep -E "^ +(val|test)/(acc|seq_acc) " "$dir/train.log" || true
    touch "$dir/done"
}

evaluate() {  # evaluate TASK LENGTHS RUN:LABEL...
    local task="$1" lengths="$2" ckpts=() labels=()
    shift 2
    for pair in "$@"; do
        ckpts+=("$out/${pair%%:*}/checkpoints/last.ckpt")
        labels+=("\"${pair#*:}\"")
    done
    echo "== evaluating $task at lengths $lengths"
    local IFS=,
    "$python" eval.py "experiment=state_$task" "ckpt_paths=[${ckpts[*]}]" "labels=[${labels[*]}]" "lengths=$lengths" \
        "paths.output_dir=$out/eval_$task" "${eval_common[@]}" "${extra_eval[@]}" > "$out/eval_$task.log" 2>&1 \
        || fail "$out/eval_$task.log"
    sed -n '/^label/,/^$/p' "$out/eval_$task.log"
}

# The overrides that set each scale's models and data (at paper scale only the heads).
if [[ "$scale" == paper ]]; then
    heads=(model.layer.n_heads=8)  # S_3 and S_5
    parity=(model.layer.n_householder=1)
    s3=("${heads[@]}")
    s3_lengths="[128,256,512,1024]"
else
    parity=(model.d_model=32 model.layer.n_heads=1 model.layer.n_householder=1 trainer.max_steps=5000)
    s3=(data.train_length=16 data.test_length=64 model.d_model=64 model.layer.use_short_conv=false trainer.max_steps=3000)
    s3_lengths="[16,32,64,128]"
fi
run parity_deltanet_neg state_parity "${parity[@]}" model.layer.allow_neg_eigval=true
run parity_deltanet_pos state_parity "${parity[@]}" model.layer.allow_neg_eigval=false
run s3_deltaproduct_nh2 state_s3 "${s3[@]}" model.layer.n_householder=2
run s3_deltanet_nh1 state_s3 "${s3[@]}" model.layer.n_householder=1
if [[ "$scale" == paper ]]; then
    run s5_deltaproduct_nh4 state_s5 "${heads[@]}" model.layer.n_householder=4
    run s5_deltaproduct_nh3 state_s5 "${heads[@]}" model.layer.n_householder=3
fi
evaluate parity "[128,256,512,1024,2048]" "parity_deltanet_neg:DeltaNet [-1,1]" "parity_deltanet_pos:DeltaNet [0,1]"
evaluate s3 "$s3_lengths" "s3_deltaproduct_nh2:DeltaProduct n_h=2 [-1,1]" "s3_deltanet_nh1:DeltaNet n_h=1 [-1,1]"
if [[ "$scale" == paper ]]; then
    evaluate s5 "[128,192,256,512]" "s5_deltaproduct_nh4:DeltaProduct n_h=4 [-1,1]" "s5_deltaproduct_nh3:DeltaProduct n_h=3 [-1,1]"
fi
echo "results in $out/eval_*"
