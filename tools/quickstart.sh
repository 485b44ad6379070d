#!/usr/bin/env bash
# The quickstart (README "main job"): on a fresh machine, with no downloads,
#   1. install llmvision,
#   2. generate the embedded synthetic grounding dataset (seed 0),
#   3. train a tiny Grounding-DINO on it with tools/train.py (CPU minutes, progress logged),
#   4. evaluate it with tools/test.py: LVIS fixed AP and RefCOCO-style P@1 on the val split,
#   5. run the image demo on a held-out synthetic image and on a real photo.
# Re-running reuses the dataset; QUICKSTART_ITERS overrides the training length.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=data/synthetic
WORK=work_dirs/quickstart
OUT=outputs/quickstart
CONFIG=configs/grounding_dino/grounding_dino_tiny_synthetic.py
REF_CONFIG=configs/grounding_dino/grounding_dino_tiny_synthetic_refcoco.py
ITERS=${QUICKSTART_ITERS:-}

echo "== [1/5] install"
python3 -m pip install -q -e .

echo "== [2/5] synthetic dataset -> $DATA"
if [ ! -f "$DATA/summary.txt" ]; then
    python3 tools/make_synthetic_dataset.py --out "$DATA" --seed 0 --num-train 600 --num-val 50
else
    echo "reusing $DATA (delete it to regenerate)"
fi

echo "== [3/5] train (logs every 20 iterations; work dir $WORK)"
TRAIN_ARGS=()
if [ -n "$ITERS" ]; then
    TRAIN_ARGS=(--cfg-options "train_cfg.max_iters=$ITERS" "train_cfg.val_interval=$ITERS")
fi
python3 tools/train.py "$CONFIG" --work-dir "$WORK" --no-validate "${TRAIN_ARGS[@]}"
CKPT=$(cat "$WORK/last_checkpoint")

echo "== [4/5] evaluate $CKPT"
mkdir -p "$OUT"
python3 tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test_lvis" \
    --out "$OUT/lvis_val_predictions.json" --show-dir vis 2>&1 | tee "$OUT/test_lvis.log"
python3 tools/test.py "$REF_CONFIG" "$CKPT" --work-dir "$WORK/test_refcoco" 2>&1 | tee "$OUT/test_refcoco.log"

echo "== [5/5] demo"
NAMES=$(python3 -c "import json; m=json.load(open('$DATA/odvg/label_map.json')); print(' . '.join(m[k] for k in sorted(m, key=int)) + ' .')")
python3 tools/image_demo.py "$DATA/images/val_000001.png" "$CONFIG" --weights "$CKPT" \
    --text "$NAMES" --out-dir "$OUT/demo_synthetic" --pred-score-thr 0.3
python3 -c "
import cv2
from skimage import data
cv2.imwrite('$OUT/astronaut.png', data.astronaut()[..., ::-1])"
python3 tools/image_demo.py "$OUT/astronaut.png" "$CONFIG" --weights "$CKPT" \
    --text "$NAMES" --out-dir "$OUT/demo_photo" --pred-score-thr 0.3

python3 - "$OUT" <<'EOF'
import re, sys
out = sys.argv[1]
def metric(log, key):
    found = re.findall(re.escape(key) + r': ([0-9.]+)', open(f'{out}/{log}').read())
    return found[-1] if found else 'n/a'
print('\n== quickstart results (synthetic val split)')
print(f"  LVIS fixed AP   : {metric('test_lvis.log', 'lvis_fixed_ap/AP')}")
print(f"  LVIS fixed AP50 : {metric('test_lvis.log', 'lvis_fixed_ap/AP50')}")
print(f"  RefCOCO P@1     : {metric('test_refcoco.log', 'refexp/val/P@1')}")
print(f'  predictions     : {out}/lvis_val_predictions.json')
print(f'  demo (synthetic): {out}/demo_synthetic/vis/val_000001.png')
print(f'  demo (photo)    : {out}/demo_photo/vis/astronaut.png')
print('  all val images drawn: work_dirs/quickstart/test_lvis/vis/')
EOF
