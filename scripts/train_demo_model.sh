#!/usr/bin/env bash
# Reproduces the bundled generator (checkpoints/bundled, checkpoints/MODEL_CARD.md) from the
# UTKFace folder: prepare the data, pretrain the AlexNet, train IPCGAN at 128 px from a
# reconstruction start, plot the curves, bundle the generator, evaluate it.
#
#   bash scripts/train_demo_model.sh /path/to/UTKFace [WORK_DIR] [LAG_DIR]
#
# Every step resumes: rerun the same command after a kill and it continues where it stopped
# (a step whose output exists, or a run that reached its last step, returns at once).
# Wall time on the 2-core CPU of the model card (AMD EPYC with AVX-512 BF16), alone on it:
# seconds for the data, about 40 min for the AlexNet (2,200 of its 2,800 steps took 33 min),
# then about 0.9-1.05 steps/s for the 4,500 generator steps (see the card for the shipped run).
# On a CPU with AVX-512 BF16 or AMX (or a GPU) the AlexNet and the GAN run in bfloat16; on
# others in float32 (bfloat16 without those instructions is ~10x slower); PRECISION=none or
# PRECISION=bfloat16 overrides. Bit-for-bit equality with the shipped weights is not promised:
# --cache reshuffles the data order at each resume and the run was not --deterministic.
set -euo pipefail

UTKFACE=${1:?usage: bash scripts/train_demo_model.sh /path/to/UTKFace [WORK_DIR] [LAG_DIR]}
WORK=${2:-runs/demo_model}
LAG=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$WORK/utkface227
ALEXNET_RUN=$WORK/alexnet
RUN=$WORK/ipcgan128
cd "$ROOT"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if [[ -z ${PRECISION:-} ]]; then
  if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then PRECISION=bfloat16; else PRECISION=none; fi
fi
echo "precision: $PRECISION"

# 1. the lists, 227-px faces, a seeded train/test split
if [[ ! -f $DATA/train.txt ]]; then
  python -m face_aging.data.prepare --dataset=utkface --input="$UTKFACE" \
    --output_dir="$DATA" --image_size=227
fi

# 2. the frozen AlexNet on UTKFace's ages (3,000 steps, early stopping on the validation split)
latest_alexnet() {
  ls -d "$ALEXNET_RUN"/pretrained/alexnet-* 2>/dev/null | sed 's/\.index$\|\.data-.*$//' | sort -u | tail -1
}
if [[ ! -f $ALEXNET_RUN/report.json ]]; then
  python -m face_aging.pretrain --list_dir="$DATA" --output_dir="$ALEXNET_RUN" \
    --time_budget_minutes=0 --max_steps=3000 --batch_size=32 --learning_rate=1e-4 \
    --warmup_steps=100 --low_res_size=131 --low_res_fraction=0.6 --eval_every=100 \
    --patience=5 --save_every=200 --log_every=10 --mixed_precision="$PRECISION"
fi
ALEXNET=$(latest_alexnet)

# 3. IPCGAN at 128 px, in three phases (each resumes the run where the last stopped; the
#    shipped run's phases ended at steps 3,008 and 3,757, where it was stopped by hand):
#    a. RECONSTRUCTION_STEPS of G alone giving back its input (L1), then the GAN with the
#       feature weight 5e-2 to step 3,000: identity kept, ages moved little;
#    b. feature weight 2e-2 to step 3,750: the judged age moved, with a red cast for the
#       oldest group;
#    c. the same plus an L1 term to the input face (--l1_loss_weight=30) to MAX_STEPS (the
#       shipped checkpoint: 4,500, chosen on training faces; MODEL_CARD.md).
#    Not the release's recipe (its flags are the defaults of train_ipcgan.py): a 1-channel
#    PatchGAN output, one (target, false) age pair per face, a reconstruction start, a smaller
#    learning rate, the L1 term, nearest-neighbour upsampling + convolution in place of G's two
#    transposed convolutions (--upsample=resize_conv: their checkerboard was on every output of
#    the model trained with them), bfloat16 where the CPU has it. MODEL_CARD.md says why.
RECONSTRUCTION_STEPS=${RECONSTRUCTION_STEPS:-1000}
MAX_STEPS=${MAX_STEPS:-4500}
train() {  # max_steps, extra flags...
  local steps=$1; shift
  python train_ipcgan.py --list_dir="$DATA" \
    --alexnet_pretrained_model="$ALEXNET" --age_pretrained_model="$ALEXNET" \
    --image_size=128 --batch_size=8 --cache --mixed_precision="$PRECISION" \
    --d_output_channels=1 --per_sample_targets --upsample=resize_conv \
    --learning_rate=2e-4 --age_loss_weight=30 \
    --reconstruction_steps="$RECONSTRUCTION_STEPS" --reconstruction_learning_rate=2e-4 \
    --log_interval=50 --save_interval=250 --sample_interval=500 --max_to_keep=0 \
    --checkpoint_dir="$RUN" --sample_dir="$RUN/samples" --max_steps="$steps" "$@"
}
train 3000 --fea_loss_weight=5e-2
train 3750 --fea_loss_weight=2e-2
train "$MAX_STEPS" --fea_loss_weight=2e-2 --l1_loss_weight=30

python scripts/plot_training_curves.py "$RUN/logs" --output="$WORK/training_curves.png" \
  --phase="$RECONSTRUCTION_STEPS:GAN fea 5e-2" --phase="3000:fea 2e-2" --phase="3750:+ L1 30"
# --face_margin=0: UTKFace's own crops (kept whole by the data tool, so it records no margin)
# are as tight as the Haar face box; test.py --detect_faces reads it from model.json.
python -m face_aging.bundle --checkpoint_dir="$RUN" --output_dir="$WORK/bundled" \
  --reference_image=images/test/astronaut.jpg \
  --note="IPCGAN at 128 px on UTKFace (non-commercial research licence); see checkpoints/MODEL_CARD.md" \
  --face_margin=0 --face_crop_note="measured: UTKFace's crops frame faces as tight as the Haar box (margin -0.015 median); python scripts/measure_face_margin.py --utkface_dir=$UTKFACE"

# 4. the model card's figures: the UTKFace test split (never trained on), and with LAG_DIR
#    (../shared/data/lag here) the cross-age check on LAG's held-out people.
python evaluate.py --checkpoint_dir="$WORK/bundled" --list_dir="$DATA" --root_folder="$DATA" \
  --output_dir="$WORK/eval" --max_faces_per_group=60 --alexnet_checkpoint="$ALEXNET"
if [[ -n $LAG ]]; then
  if [[ ! -f $WORK/lag/test_cross_age.txt ]]; then
    python -m face_aging.data.prepare --dataset=lag --input="$LAG" --output_dir="$WORK/lag"
  fi
  python evaluate.py --checkpoint_dir="$WORK/bundled" --cross_age_pairs="$WORK/lag/test_cross_age.txt" \
    --output_dir="$WORK/eval_cross_age"
fi
echo "bundled generator in $WORK/bundled; figures in $WORK/eval${LAG:+ and $WORK/eval_cross_age}"
