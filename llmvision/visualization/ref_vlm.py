"""Draw a REF-VLM answer: the decoded boxes of every triplet (labelled with its phrase) and its keypoints."""
from typing import Dict, Sequence

import cv2
import numpy as np

from .draw import color_for, draw_detections


def draw_ref_answer(image: np.ndarray, triplets: Sequence[Dict], kpt_thr: float = 0.5) -> np.ndarray:
    """Return a copy of ``image`` (RGB uint8 ``[H, W, 3]``) with a REF-VLM answer drawn.

    Args:
        triplets: ``REFVLMModel.predict``'s ``pred_triplets``: dicts with ``phrase``, ``bboxes [n, 4]`` pixel xyxy
            and optionally ``keypoints [n, K, 3]`` (x, y, visibility probability). One colour per triplet.
        kpt_thr: keypoints with a visibility probability below this are drawn hollow.
    """
    boxes, names, colors = [], [], []
    for t_idx, t in enumerate(triplets):
        for box in np.asarray(t['bboxes'], dtype=np.float32).reshape(-1, 4):
            boxes.append(box)
            names.append(str(t['phrase']))
            colors.append(t_idx)
    out = draw_detections(image, np.asarray(boxes).reshape(-1, 4), names, color_ids=colors) if boxes \
        else np.ascontiguousarray(image.copy())
    radius = max(2, round(min(out.shape[:2]) / 120))
    for t_idx, t in enumerate(triplets):
        if t.get('keypoints') is None:
            continue
        color = color_for(t_idx)
        for x, y, v in np.asarray(t['keypoints'], dtype=np.float32).reshape(-1, 3):
            cv2.circle(out, (int(round(x)), int(round(y))), radius, color, -1 if v >= kpt_thr else 1, cv2.LINE_AA)
    return out
