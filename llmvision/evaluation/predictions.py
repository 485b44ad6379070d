"""Detections in and out: model outputs -> records, result-format json <-> :class:`BoxDetections`.

A *record* is what a detection metric keeps per image (``process`` -> ``compute_metrics``):
``{'img_id': int, 'bboxes': [K, 4] float64 pixel xyxy (original image), 'scores': [K], 'labels': [K]}``.
The result format is COCO/LVIS's: a json list of ``{image_id, category_id, bbox [x, y, w, h], score}``.
Bad input (unknown image or category id, NaN/inf score or box, negative box size) raises
``ValueError`` naming the source (file or image id) and the entry index.
"""
import json
import os
from typing import Iterable, List, Sequence

import numpy as np

from llmvision.utils.compat import atomic_write_bytes

from .box_ap import BoxDetections, BoxGroundTruth


def to_numpy(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def get_field(obj, key, default=None):
    """Field of a DetDataSample / InstanceData or of their ``to_dict()`` form."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    if hasattr(obj, 'metainfo') and key in obj.metainfo:
        return obj.metainfo[key]
    return getattr(obj, key, default)


def sample_to_record(sample) -> dict:
    """DetDataSample (or its dict) -> a record; validates boxes and scores.

    Expects metainfo ``img_id`` and ``pred_instances`` with ``bboxes [K, 4]`` pixel xyxy in the
    original image, ``scores [K]``, ``labels [K]`` (index into the dataset's sorted category ids).
    """
    img_id = get_field(sample, 'img_id')
    if img_id is None:
        raise ValueError('data sample has no metainfo "img_id"')
    pred = get_field(sample, 'pred_instances')
    if pred is None:
        raise ValueError(f'data sample of image {img_id} has no pred_instances')
    bboxes = to_numpy(get_field(pred, 'bboxes', np.zeros((0, 4)))).astype(np.float64).reshape(-1, 4)
    scores = to_numpy(get_field(pred, 'scores', np.zeros(0))).astype(np.float64).reshape(-1)
    labels = to_numpy(get_field(pred, 'labels', np.zeros(0))).astype(np.int64).reshape(-1)
    if not (len(bboxes) == len(scores) == len(labels)):
        raise ValueError(f'image {img_id}: pred_instances sizes differ: bboxes {len(bboxes)}, '
                         f'scores {len(scores)}, labels {len(labels)}')
    check_boxes_scores(bboxes, scores, f'image {img_id}', xyxy=True)
    return {'img_id': int(img_id), 'bboxes': bboxes, 'scores': scores, 'labels': labels}


def check_boxes_scores(boxes: np.ndarray, scores: np.ndarray, where: str, xyxy: bool) -> None:
    """Raise on non-finite scores/boxes or negative box size. ``boxes [K, 4]``, ``scores [K]``."""
    bad = np.nonzero(~np.isfinite(scores))[0]
    if len(bad):
        raise ValueError(f'{where}: prediction {int(bad[0])} has a non-finite score {scores[bad[0]]}')
    bad = np.nonzero(~np.isfinite(boxes).all(1))[0]
    if len(bad):
        raise ValueError(f'{where}: prediction {int(bad[0])} has a non-finite box {boxes[bad[0]].tolist()}')
    size = boxes[:, 2:] - boxes[:, :2] if xyxy else boxes[:, 2:]
    bad = np.nonzero((size < 0).any(1))[0]
    if len(bad):
        raise ValueError(f'{where}: prediction {int(bad[0])} has a box of negative size '
                         f'{boxes[bad[0]].tolist()} ({"xyxy" if xyxy else "xywh"})')


def dedupe_records(records: Sequence[dict], key: str = 'img_id') -> List[dict]:
    """Drop repeated samples (the distributed sampler pads the last batch with duplicates)."""
    seen, out = set(), []
    for r in records:
        k = r[key]
        if k in seen:
            continue
        seen.add(k)
        out.append(r)
    return out


def records_to_results(records: Iterable[dict], cat_ids: Sequence[int]) -> List[dict]:
    """Records -> result-format dicts (labels mapped through the sorted category ids)."""
    cat_ids = np.asarray(cat_ids)
    out = []
    for r in records:
        labels = r['labels']
        bad = np.nonzero((labels < 0) | (labels >= len(cat_ids)))[0]
        if len(bad):
            raise ValueError(f'image {r["img_id"]}: label {int(labels[bad[0]])} outside the '
                             f'{len(cat_ids)} categories of the annotation file')
        b = r['bboxes']
        xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
        for box, s, lab in zip(xywh.tolist(), r['scores'].tolist(), labels.tolist()):
            out.append({'image_id': r['img_id'], 'category_id': int(cat_ids[lab]), 'bbox': box, 'score': s})
    return out


def results2json(results: List[dict], out_file: str) -> str:
    """Write result-format dicts to ``out_file`` atomically (temp file + ``os.replace``)."""
    atomic_write_bytes(json.dumps(results).encode(), out_file)
    return out_file


def load_results_json(path: str) -> List[dict]:
    """Read a result-format json list (clear errors on a missing/broken file or a non-list)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'result file not found: {path}')
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: invalid json at line {e.lineno}: {e.msg}') from e
    if not isinstance(data, list):
        raise ValueError(f'{path}: expected a json list of detections, got {type(data).__name__}')
    return data


def _positions(ids: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` in the sorted array ``known``; -1 where an id is unknown."""
    pos = np.searchsorted(known, ids)
    pos_c = np.minimum(pos, max(len(known) - 1, 0))
    ok = (pos < len(known)) & (known[pos_c] == ids) if len(known) else np.zeros(len(ids), bool)
    return np.where(ok, pos_c, -1)


def results_to_detections(results: Sequence[dict], gt: BoxGroundTruth, source: str = '<results>') -> BoxDetections:
    """Result-format dicts -> validated :class:`BoxDetections` against ``gt``'s image/category ids."""
    try:
        img = np.array([r['image_id'] for r in results], dtype=np.int64)
        cat = np.array([r['category_id'] for r in results], dtype=np.int64)
        scores = np.array([r['score'] for r in results], dtype=np.float64)
        boxes = np.array([r['bbox'] for r in results], dtype=np.float64).reshape(len(results), 4)
    except (KeyError, TypeError, ValueError):
        _raise_first_malformed(results, source)
        raise
    img_index, cat_index = _positions(img, gt.img_ids), _positions(cat, gt.cat_ids)
    bad = np.nonzero(img_index < 0)[0]
    if len(bad):
        raise ValueError(f'{source}: entry {int(bad[0])}: image_id {int(img[bad[0]])} is not in the annotation file')
    bad = np.nonzero(cat_index < 0)[0]
    if len(bad):
        raise ValueError(f'{source}: entry {int(bad[0])}: category_id {int(cat[bad[0]])} is not in the '
                         'annotation file')
    check_boxes_scores(boxes, scores, source, xyxy=False)
    return BoxDetections(img_index, cat_index, boxes, scores)


def _raise_first_malformed(results: Sequence[dict], source: str) -> None:
    """Find the first entry that does not parse and raise a ValueError naming it."""
    for j, r in enumerate(results):
        try:
            int(r['image_id']), int(r['category_id']), float(r['score'])
            if len([float(v) for v in r['bbox']]) != 4:
                raise ValueError
        except KeyError as e:
            raise ValueError(f'{source}: entry {j}: missing key {e}') from e
        except (TypeError, ValueError) as e:
            raise ValueError(f'{source}: entry {j}: malformed entry {r!r}') from e


def records_to_detections(records: Sequence[dict], gt: BoxGroundTruth,
                          source: str = '<predictions>') -> BoxDetections:
    """Records -> :class:`BoxDetections` without a json round trip (order kept)."""
    img_pos = {int(i): p for p, i in enumerate(gt.img_ids)}
    parts_img, parts_cat, parts_box, parts_score = [], [], [], []
    for r in records:
        if r['img_id'] not in img_pos:
            raise ValueError(f'{source}: image id {r["img_id"]} is not in the annotation file')
        labels = r['labels']
        bad = np.nonzero((labels < 0) | (labels >= len(gt.cat_ids)))[0]
        if len(bad):
            raise ValueError(f'{source}: image {r["img_id"]}: label {int(labels[bad[0]])} outside the '
                             f'{len(gt.cat_ids)} categories of the annotation file')
        b = r['bboxes']
        parts_img.append(np.full(len(labels), img_pos[r['img_id']], np.int64))
        parts_cat.append(labels.astype(np.int64))
        parts_box.append(np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1))
        parts_score.append(r['scores'])
    if not parts_img:
        return BoxDetections(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))
    return BoxDetections(np.concatenate(parts_img), np.concatenate(parts_cat), np.concatenate(parts_box),
                         np.concatenate(parts_score))


def _top_k_per_group(dt: BoxDetections, group: np.ndarray, k: int) -> BoxDetections:
    """Keep each group's ``k`` highest-scoring detections (stable on ties; input order kept)."""
    if not len(group):
        return dt
    order = np.lexsort((-dt.scores, group))  # by group, then score desc; lexsort is stable
    g = group[order]
    first = np.r_[True, g[1:] != g[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(g)), 0))
    return dt.select(np.sort(order[(np.arange(len(g)) - start) < k]))


def top_k_per_category(dt: BoxDetections, k: int) -> BoxDetections:
    """Fixed-AP cap (Dave et al. 2021): each category's ``k`` best detections over the whole set."""
    return _top_k_per_group(dt, dt.cat_index, k)


def top_k_per_image(dt: BoxDetections, k: int) -> BoxDetections:
    """LVIS's standard cap (``LVISResults(max_dets=k)``): each image's ``k`` best detections."""
    return _top_k_per_group(dt, dt.img_index, k)
