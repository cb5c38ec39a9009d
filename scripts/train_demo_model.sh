#!/usr/bin/env bash
# Reproduces the bundled generator (checkpoints/bundled, checkpoints/MODEL_CARD.md) from the
# UTKFace folder: prepare the data, pretrain the AlexNet (55 min), train IPCGAN at 64 px in the
# phases the bundled model went through, plot the curves, bundle the generator.
#
#   bash scripts/train_demo_model.sh /path/to/UTKFace [WORK_DIR]
#
# Every step resumes: rerun the same command after a kill and it continues where it stopped
# (a phase that already reached its last step returns at once). Wall time on a 2-core CPU:
# about 20 s + 55 min + the GAN phases (0.6-0.8 steps/s at 64 px, batch 8, --xla).
# Bit-for-bit equality with the shipped weights is not promised: the run was not
# --deterministic (XLA), and --cache reshuffles the data order at each resume.
set -euo pipefail

UTKFACE=${1:?usage: bash scripts/train_demo_model.sh /path/to/UTKFace [WORK_DIR]}
WORK=${2:-runs/demo_model}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$WORK/utkface227
ALEXNET_RUN=$WORK/alexnet
RUN=$WORK/ipcgan64
cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [[ ! -f $DATA/train.txt ]]; then
  python -m face_aging.data.prepare --dataset=utkface --input="$UTKFACE" \
    --output_dir="$DATA" --image_size=227
fi

ALEXNET=$(ls -d "$ALEXNET_RUN"/pretrained/alexnet-* 2>/dev/null | sed 's/\.index$\|\.data-.*$//' | sort -u | tail -1 || true)
if [[ -z $ALEXNET ]]; then
  python -m face_aging.pretrain --list_dir="$DATA" --output_dir="$ALEXNET_RUN" \
    --time_budget_minutes=55 --max_steps=100000 --batch_size=32 --learning_rate=1e-4 \
    --warmup_steps=100 --low_res_size=131 --low_res_fraction=0.6 --eval_every=100 \
    --patience=5 --save_every=200 --log_every=10
  ALEXNET=$(ls -d "$ALEXNET_RUN"/pretrained/alexnet-* | sed 's/\.index$\|\.data-.*$//' | sort -u | tail -1)
fi

# One GAN phase: train until step $1 with the extra flags that follow.
phase() {
  local until=$1; shift
  python train_ipcgan.py --list_dir="$DATA" \
    --alexnet_pretrained_model="$ALEXNET" --age_pretrained_model="$ALEXNET" \
    --image_size=64 --batch_size=8 --xla --cache \
    --log_interval=50 --save_interval=250 --sample_interval=250 --max_to_keep=0 \
    --checkpoint_dir="$RUN" --sample_dir="$RUN/samples" --max_steps="$until" "$@"
}

# The phases the bundled model went through (MODEL_CARD.md says why each changed).
phase 792  --fea_loss_weight=2e-3 --age_loss_weight=30   # no identity kept: feature weight raised
phase 2072 --fea_loss_weight=1e-2 --age_loss_weight=30   # identity kept, no age conditioning
phase 2250 --fea_loss_weight=1e-2 --age_loss_weight=100  # tried: artifacts, weight set back
phase 2500 --fea_loss_weight=1e-2 --age_loss_weight=30
phase 5000 --fea_loss_weight=1e-2 --age_loss_weight=30 --per_sample_targets

python scripts/plot_training_curves.py "$RUN/logs" --output="$WORK/training_curves.png" \
  --phase="792:fea 1e-2" --phase="2072:age 100" --phase="2250:age 30" \
  --phase="2500:per-sample targets"
# --face_margin=0: UTKFace's own crops (kept whole by the data tool, so it records no margin)
# are as tight as the Haar face box; test.py --detect_faces reads it from model.json.
python -m face_aging.bundle --checkpoint_dir="$RUN" --output_dir="$WORK/bundled" \
  --reference_image=images/test/astronaut.jpg \
  --note="IPCGAN at 64 px on UTKFace (non-commercial research licence); see checkpoints/MODEL_CARD.md" \
  --face_margin=0 --face_crop_note="measured: UTKFace's crops frame faces as tight as the Haar box (margin -0.015 median); python scripts/measure_face_margin.py --utkface_dir=$UTKFACE"
echo "bundled generator in $WORK/bundled; evaluate it with:"
echo "  python evaluate.py --checkpoint_dir=$WORK/bundled --list_dir=$DATA --root_folder=$DATA --output_dir=$WORK/eval --max_faces_per_group=60 --alexnet_checkpoint=$ALEXNET"
