"""Draw boxes, labels and scores on an image (demo, ``--show-dir``)."""
import cv2
import numpy as np

# Distinct, saturated colours (RGB) that stay readable with white or black text.
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
           (128, 0, 0), (0, 0, 128), (128, 128, 0), (255, 225, 25), (250, 190, 212)]


def color_for(index: int):
    """RGB colour of a label index."""
    return PALETTE[index % len(PALETTE)]


def _text_color(rgb) -> tuple:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luminance > 150 else (255, 255, 255)


def draw_detections(image: np.ndarray, bboxes, names, scores=None, color_ids=None,
                    thickness: int = None) -> np.ndarray:
    """Return a copy of ``image`` (RGB uint8 ``[H, W, 3]``) with boxes drawn.

    Args:
        bboxes: ``[K, 4]`` pixel xyxy (array-like).
        names: K label strings.
        scores: optional K scores, printed as ``name 0.87``.
        color_ids: optional K ints choosing the palette colour (defaults to one per distinct name).

    Boxes are drawn in ascending score order (the best one ends up on top).
    """
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    thickness = thickness or max(1, round(min(h, w) / 250))
    font_scale = max(0.35, min(h, w) / 900)
    if color_ids is None:
        order = {n: i for i, n in enumerate(dict.fromkeys(names))}
        color_ids = [order[n] for n in names]
    # lowest score first, so the best box's label is drawn on top of overlapping duplicates
    draw_order = range(len(bboxes)) if scores is None else \
        sorted(range(len(bboxes)), key=lambda i: float(scores[i]))
    for k in draw_order:
        box = bboxes[k]
        x1, y1, x2, y2 = [int(round(v)) for v in box]
        x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
        y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
        color = color_for(color_ids[k])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = names[k] if scores is None else f'{names[k]} {float(scores[k]):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else min(y1 + 1, h - th - base - 2)
        tx = max(0, min(x1, w - tw - 2))
        cv2.rectangle(out, (tx, ty), (tx + tw + 2, ty + th + base + 2), color, -1)
        cv2.putText(out, text, (tx + 1, ty + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    _text_color(color), 1, cv2.LINE_AA)
    return out
