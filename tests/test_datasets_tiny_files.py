"""Tiny on-disk fixtures for the dataset tests (imported by the other test_datasets_* files).

Images are flat grey with each box painted in its own colour, so a test can check that boxes
still sit on their colour after any transform.
"""
import json

import cv2
import numpy as np

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]


def write_image(path, height, width, boxes=()):
    """Write a ``height x width`` BGR png with box ``k`` (pixel xyxy) filled with ``PALETTE[k]``."""
    img = np.full((height, width, 3), 128, np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        img[int(y1):int(y2), int(x1):int(x2)] = PALETTE[k % len(PALETTE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return img


def write_jsonl(path, records):
    """Write ``records`` (dicts, or raw strings written as they are) one per line."""
    with open(path, 'w') as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + '\n')
    return str(path)


def grounding_record(filename, height, width, caption, regions, long_caption=None):
    """An ODVG grounding line; ``regions`` = [(bbox or [bboxes], phrase, spans)]."""
    rec = dict(filename=filename, height=height, width=width,
               grounding=dict(caption=caption,
                              regions=[dict(bbox=b, phrase=p, tokens_positive=s) for b, p, s in regions]))
    if long_caption is not None:
        rec['conversations'] = [dict(value='<image>\nDescribe the image in detail.', **{'from': 'human'}),
                                dict(value=long_caption, **{'from': 'gpt'})]
    return rec


def test_write_image_paints_boxes(tmp_path):
    img = write_image(tmp_path / 'a.png', 20, 30, [(2, 3, 10, 12)])
    back = cv2.imread(str(tmp_path / 'a.png'))
    assert np.array_equal(img, back)
    assert tuple(back[5, 5]) == PALETTE[0] and tuple(back[0, 0]) == (128, 128, 128)
