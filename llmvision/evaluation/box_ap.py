"""Vectorised COCO / LVIS box average precision (our own evaluator, numpy only).

It reproduces, number for number, ``pycocotools.cocoeval.COCOeval`` (``protocol='coco'``) and
``lvis.LVISEval`` (``protocol='lvis'``) for ``iou_type='bbox'``, but never loops over
(image, category) pairs in Python: IoUs of every detection against the ground truths of its own
(image, category) pair are computed at once, and the greedy matching advances "detection rank r"
for all pairs together (pairs bucketed by their ground-truth count).

Semantics kept exactly (they decide ties and ignore flags):
  * per pair, detections by score descending (stable: input order breaks ties); ground truths
    regular first, then ignored; a detection takes the unmatched regular gt of highest IoU
    (>= threshold, the last one in order on equal IoU), else the best ignored gt; crowd gts (COCO)
    can be matched many times; IoU is ``inter / (area_dt if crowd else union)`` on xywh boxes.
  * a gt is ignored when ``ignore`` (COCO: ``iscrowd``; LVIS: the ``ignore`` key) or its ``area``
    is outside the area range; an unmatched detection is ignored when its ``w*h`` area is outside
    the range, or (LVIS) its category is in the image's ``not_exhaustive_category_ids``.
  * LVIS drops a detection whose category is neither annotated in its image nor in the image's
    ``neg_category_ids``; COCO keeps only the top ``max_dets[-1]`` per (image, category) and
    evaluates every ``max_dets`` value by truncating that list.
  * accumulate: per category, detections of all images by score (stable over image order, then
    per-pair order); precision made monotone from the right, sampled at 101 recall thresholds.

Inputs are :class:`BoxGroundTruth` / :class:`BoxDetections` (flat numpy arrays); building them
from json or from model outputs lives in ``ground_truth.py`` / ``predictions.py``.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RNGS = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
FREQ_LBLS = ('r', 'c', 'f')


@dataclass
class BoxGroundTruth:
    """Ground truth of a COCO/LVIS-format set, as flat arrays.

    Attributes:
        img_ids: ``[I]`` sorted image ids. cat_ids: ``[C]`` sorted category ids.
        img_index / cat_index: ``[G]`` positions of each annotation's image / category.
        ann_ids: ``[G]`` annotation ids (an id of 0 never counts as matched, as in the references).
        boxes: ``[G, 4]`` float64 xywh. areas: ``[G]`` the annotation's ``area`` field.
        ignore: ``[G]`` bool (COCO: iscrowd; LVIS: ``ignore``). iscrowd: ``[G]`` bool (LVIS: all False).
        neg_cats / not_exhaustive_cats: per image (``[I]`` lists) category positions (LVIS only).
        cat_freq: ``[C]`` 'r'/'c'/'f' (LVIS only).
    """
    img_ids: np.ndarray
    cat_ids: np.ndarray
    img_index: np.ndarray
    cat_index: np.ndarray
    ann_ids: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    ignore: np.ndarray
    iscrowd: np.ndarray
    neg_cats: Optional[List[np.ndarray]] = None
    not_exhaustive_cats: Optional[List[np.ndarray]] = None
    cat_freq: Optional[List[str]] = None


@dataclass
class BoxDetections:
    """Detections as flat arrays (order = input order, which breaks score ties).

    Attributes:
        img_index / cat_index: ``[D]`` positions in ``BoxGroundTruth.img_ids`` / ``.cat_ids``.
        boxes: ``[D, 4]`` float64 xywh. scores: ``[D]`` float64.
    """
    img_index: np.ndarray
    cat_index: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def select(self, keep: np.ndarray) -> 'BoxDetections':
        """Subset by an index or boolean array (keeps relative order)."""
        return BoxDetections(self.img_index[keep], self.cat_index[keep], self.boxes[keep], self.scores[keep])


@dataclass
class EvalResult:
    """``precision [T, R, C, A, M]``, ``recall [T, C, A, M]`` (-1 where a category has no gt)."""
    precision: np.ndarray
    recall: np.ndarray
    max_dets: Sequence[int]
    stats: Dict[str, float] = field(default_factory=dict)


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """Lexicographic stable order; the first key is the most significant."""
    return np.lexsort(tuple(reversed(keys)))


def pairwise_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``bbIou`` arithmetic, broadcast: ``dt [..., 4]``, ``gt [..., 4]``, ``crowd [...]`` -> ``[...]``."""
    dx, dy, dw, dh = np.moveaxis(dt, -1, 0)
    gx, gy, gw, gh = np.moveaxis(gt, -1, 0)
    w = np.minimum(dx + dw, gx + gw) - np.maximum(dx, gx)
    h = np.minimum(dy + dh, gy + gh) - np.maximum(dy, gy)
    valid = (w > 0) & (h > 0)
    inter = np.where(valid, w * h, 0.0)
    da, ga = dw * dh, gw * gh
    union = np.where(crowd, da, da + ga - inter)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(valid & (union > 0), inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def _pick_last_max(score: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Index of the last maximum of ``score`` among ``ok`` along the last axis (-1 if none)."""
    s = np.where(ok, score, -np.inf)
    g = s.shape[-1]
    idx = g - 1 - np.argmax(s[..., ::-1], axis=-1)
    return np.where(ok.any(-1), idx, -1)


def _match(gt: BoxGroundTruth, dt: BoxDetections, gt_ig_area: np.ndarray, thrs: np.ndarray):
    """Greedy matching of every detection, for every IoU threshold and area range.

    Args:
        gt_ig_area: ``[G, A]`` gt ignore flags per area range.
        thrs: ``[T]`` IoU thresholds.
    Returns:
        ``matched [D, T, A]`` bool (matched to a gt with a non-zero id), ``matched_ig [D, T, A]`` bool
        (a gt was taken and it is ignored). ``dt`` must be ordered by (pair, rank).
    """
    n_dt, n_t, n_a = len(dt.scores), len(thrs), gt_ig_area.shape[1]
    matched = np.zeros((n_dt, n_t, n_a), dtype=bool)
    matched_ig = np.zeros((n_dt, n_t, n_a), dtype=bool)
    n_cat = len(gt.cat_ids)
    if n_dt == 0 or len(gt.ann_ids) == 0:
        return matched, matched_ig
    thr_eff = np.minimum(thrs, 1 - 1e-10)

    # ground truths grouped by pair key, in original (annotation) order within a pair
    gkey = gt.img_index.astype(np.int64) * n_cat + gt.cat_index
    gorder = np.argsort(gkey, kind='stable')
    gkeys_sorted = gkey[gorder]
    ukeys, gstart, gcount = np.unique(gkeys_sorted, return_index=True, return_counts=True)

    dkey = dt.img_index.astype(np.int64) * n_cat + dt.cat_index
    # detection pairs (contiguous runs of dkey since dt is ordered by pair)
    dks, dstart, dcount = np.unique(dkey, return_index=True, return_counts=True)
    pair_gpos = np.searchsorted(ukeys, dks)
    pair_has = (pair_gpos < len(ukeys)) & (ukeys[np.minimum(pair_gpos, len(ukeys) - 1)] == dks)
    pd_start, pd_count = dstart[pair_has], dcount[pair_has]
    pg_start, pg_count = gstart[pair_gpos[pair_has]], gcount[pair_gpos[pair_has]]

    bucket = np.ceil(np.log2(np.maximum(pg_count, 1))).astype(np.int64)
    for b in np.unique(bucket):
        sel = np.nonzero(bucket == b)[0]
        sel = sel[np.argsort(-pd_count[sel], kind='stable')]  # active pairs form a prefix
        gb = int(pg_count[sel].max())
        ds, dc, gs, gc = pd_start[sel], pd_count[sel], pg_start[sel], pg_count[sel]
        slot = np.arange(gb)
        gvalid = slot[None, :] < gc[:, None]  # [P, Gb]
        gidx = gorder[np.minimum(gs[:, None] + slot[None, :], len(gorder) - 1)]  # [P, Gb]
        g_boxes = gt.boxes[gidx]
        g_crowd = gt.iscrowd[gidx] & gvalid
        g_ig = gt_ig_area[gidx] & gvalid[..., None]  # [P, Gb, A]
        g_ig = np.transpose(g_ig, (0, 2, 1))[:, None]  # [P, 1, A, Gb]
        g_id_ok = (gt.ann_ids[gidx] != 0) & gvalid
        gmatched = np.zeros((len(sel), n_t, n_a, gb), dtype=bool)
        for r in range(int(dc.max())):
            n_act = int(np.searchsorted(-dc, -r, side='left'))  # dc is descending: pairs with count > r
            d_idx = ds[:n_act] + r
            iou = pairwise_iou_xywh(dt.boxes[d_idx][:, None, :], g_boxes[:n_act], g_crowd[:n_act])  # [Pa, Gb]
            iou = np.where(gvalid[:n_act], iou, -1.0)
            cand = (iou[:, None, None, :] >= thr_eff[None, :, None, None])  # [Pa, T, 1, Gb]
            ig = g_ig[:n_act]
            gm = gmatched[:n_act]
            reg_ok = cand & ~ig & ~gm
            ign_ok = cand & ig & (~gm | g_crowd[:n_act, None, None, :])
            iou_b = iou[:, None, None, :]
            m_reg = _pick_last_max(np.broadcast_to(iou_b, reg_ok.shape), reg_ok)
            m_ign = _pick_last_max(np.broadcast_to(iou_b, ign_ok.shape), ign_ok)
            m = np.where(m_reg >= 0, m_reg, m_ign)  # [Pa, T, A]
            hit = m >= 0
            mi = np.maximum(m, 0)
            pa, ti, ai = np.nonzero(hit)
            gmatched[pa, ti, ai, mi[pa, ti, ai]] = True
            ig_of_m = np.take_along_axis(np.broadcast_to(ig, gm.shape), mi[..., None], -1)[..., 0]
            idok = np.take_along_axis(g_id_ok[:n_act], mi.reshape(n_act, -1), 1).reshape(mi.shape)
            matched[d_idx] = hit & idok
            matched_ig[d_idx] = hit & ig_of_m
    return matched, matched_ig


def evaluate_boxes(gt: BoxGroundTruth, dt: BoxDetections, protocol: str = 'lvis',
                   max_dets: Sequence[int] = (1, 10, 100), img_subset: Optional[np.ndarray] = None) -> EvalResult:
    """COCO (``protocol='coco'``) or LVIS (``'lvis'``) box AP.

    Args:
        gt: the ground truth. dt: detections (any order; input order breaks score ties).
        max_dets: COCO only: per (image, category) caps. LVIS uses every detection given (apply
            the per-image cap or the fixed-AP per-category cap before calling).
        img_subset: optional ``[I']`` image positions to evaluate (default: all images).
    Returns:
        :class:`EvalResult` with ``stats``: AP, AP50, AP75, APs, APm, APl (+ APr, APc, APf and
        AR, ARs, ARm, ARl for LVIS; AR@m and ARs/m/l for COCO).
    """
    if protocol not in ('coco', 'lvis'):
        raise ValueError(f"protocol must be 'coco' or 'lvis', got {protocol!r}")
    lvis = protocol == 'lvis'
    n_img, n_cat = len(gt.img_ids), len(gt.cat_ids)
    n_t, n_r, n_a = len(IOU_THRS), len(REC_THRS), len(AREA_RNGS)
    m_list = [-1] if lvis else sorted(int(m) for m in max_dets)

    in_img = np.ones(n_img, dtype=bool)
    if img_subset is not None:
        in_img[:] = False
        in_img[np.asarray(img_subset, dtype=np.int64)] = True
    gsel = in_img[gt.img_index]
    dsel = in_img[dt.img_index]
    dt = dt.select(np.nonzero(dsel)[0])
    gkey = gt.img_index.astype(np.int64) * n_cat + gt.cat_index

    if lvis and len(dt.scores):
        allowed = [gkey[gsel]]
        for i in np.nonzero(in_img)[0]:
            if gt.neg_cats is not None and len(gt.neg_cats[i]):
                allowed.append(i * n_cat + np.asarray(gt.neg_cats[i], dtype=np.int64))
        allowed = np.unique(np.concatenate(allowed)) if allowed else np.zeros(0, np.int64)
        dkey = dt.img_index.astype(np.int64) * n_cat + dt.cat_index
        dt = dt.select(np.nonzero(np.isin(dkey, allowed))[0])

    # order detections by pair, then score (stable) -> rank within the pair
    dkey = dt.img_index.astype(np.int64) * n_cat + dt.cat_index
    order = _stable_order(dkey, -dt.scores)
    dt = dt.select(order)
    dkey = dkey[order]
    if len(dkey):
        first = np.r_[True, dkey[1:] != dkey[:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(dkey)), 0))
        rank = np.arange(len(dkey)) - run_start
    else:
        rank = np.zeros(0, dtype=np.int64)
    if not lvis:
        keep = rank < m_list[-1]
        dt, dkey, rank = dt.select(np.nonzero(keep)[0]), dkey[keep], rank[keep]

    g = np.nonzero(gsel)[0]
    gt_eval = BoxGroundTruth(gt.img_ids, gt.cat_ids, gt.img_index[g], gt.cat_index[g], gt.ann_ids[g],
                             gt.boxes[g], gt.areas[g], gt.ignore[g], gt.iscrowd[g] if not lvis else
                             np.zeros(len(g), dtype=bool))
    lo = np.array([a[0] for a in AREA_RNGS])
    hi = np.array([a[1] for a in AREA_RNGS])
    gt_ig_area = gt_eval.ignore[:, None] | (gt_eval.areas[:, None] < lo) | (gt_eval.areas[:, None] > hi)
    matched, matched_ig = _match(gt_eval, dt, gt_ig_area, IOU_THRS)

    d_area = dt.boxes[:, 2] * dt.boxes[:, 3]
    unmatched_ig = (d_area[:, None] < lo) | (d_area[:, None] > hi)  # [D, A]
    if lvis and gt.not_exhaustive_cats is not None and len(dkey):
        nel_keys = [i * n_cat + np.asarray(gt.not_exhaustive_cats[i], dtype=np.int64)
                    for i in np.nonzero(in_img)[0] if len(gt.not_exhaustive_cats[i])]
        if nel_keys:
            unmatched_ig = unmatched_ig | np.isin(dkey, np.concatenate(nel_keys))[:, None]
    d_ig = matched_ig | (~matched & unmatched_ig[:, None, :])  # [D, T, A]
    tps = matched & ~d_ig
    fps = ~matched & ~d_ig

    # per category: detections by score over (image order, rank) -- the references' concatenation
    acc_order = _stable_order(dt.cat_index, -dt.scores, dt.img_index, rank)
    cat_sorted = dt.cat_index[acc_order]
    cstart = np.searchsorted(cat_sorted, np.arange(n_cat), side='left')
    cend = np.searchsorted(cat_sorted, np.arange(n_cat), side='right')
    n_gt = np.zeros((n_cat, n_a), dtype=np.int64)
    np.add.at(n_gt, gt_eval.cat_index, (~gt_ig_area).astype(np.int64))
    has_any = np.zeros(n_cat, dtype=bool)
    has_any[gt_eval.cat_index] = True
    has_any[dt.cat_index] = True

    precision = -np.ones((n_t, n_r, n_cat, n_a, len(m_list)))
    recall = -np.ones((n_t, n_cat, n_a, len(m_list)))
    eps = np.spacing(1)
    for k in range(n_cat):
        if not has_any[k]:
            continue
        idx = acc_order[cstart[k]:cend[k]]
        for mi, mdet in enumerate(m_list):
            sub = idx if mdet < 0 else idx[rank[idx] < mdet]
            for a in range(n_a):
                npig = n_gt[k, a]
                if npig == 0:
                    continue
                tp = np.cumsum(tps[sub, :, a].T, axis=1).astype(np.float64)  # [T, n]
                fp = np.cumsum(fps[sub, :, a].T, axis=1).astype(np.float64)
                nd = tp.shape[1]
                rc = tp / npig
                pr = tp / (fp + tp + eps)
                recall[:, k, a, mi] = rc[:, -1] if nd else 0
                if nd == 0:
                    precision[:, :, k, a, mi] = 0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                for t in range(n_t):
                    inds = np.searchsorted(rc[t], REC_THRS, side='left')
                    q = np.zeros(n_r)
                    ok = inds < nd
                    q[ok] = pr[t, inds[ok]]
                    # the references stop at the first out-of-range index (an exception); inds is sorted
                    precision[t, :, k, a, mi] = q
    res = EvalResult(precision, recall, m_list)
    res.stats = _summarize(res, gt, lvis)
    return res


def _mean_valid(s: np.ndarray) -> float:
    v = s[s > -1]
    return float(np.mean(v)) if v.size else -1.0


def _summarize(res: EvalResult, gt: BoxGroundTruth, lvis: bool) -> Dict[str, float]:
    p, r = res.precision, res.recall
    t50, t75 = np.where(IOU_THRS == 0.5)[0], np.where(IOU_THRS == 0.75)[0]
    m = len(res.max_dets) - 1
    stats = {
        'AP': _mean_valid(p[:, :, :, 0, m]),
        'AP50': _mean_valid(p[t50][:, :, :, 0, m]),
        'AP75': _mean_valid(p[t75][:, :, :, 0, m]),
        'APs': _mean_valid(p[:, :, :, 1, m]),
        'APm': _mean_valid(p[:, :, :, 2, m]),
        'APl': _mean_valid(p[:, :, :, 3, m]),
    }
    if lvis:
        freq = np.asarray(gt.cat_freq if gt.cat_freq is not None else [''] * len(gt.cat_ids))
        for lbl in FREQ_LBLS:
            ks = np.nonzero(freq == lbl)[0]
            stats[f'AP{lbl}'] = _mean_valid(p[:, :, ks, 0, m])
        stats['AR'] = _mean_valid(r[:, :, 0, m])
        for a, lbl in zip((1, 2, 3), 'sml'):
            stats[f'AR{lbl}'] = _mean_valid(r[:, :, a, m])
    else:
        for mi, md in enumerate(res.max_dets):
            stats[f'AR@{md}'] = _mean_valid(r[:, :, 0, mi])
        for a, lbl in zip((1, 2, 3), 'sml'):
            stats[f'AR{lbl}@{res.max_dets[m]}'] = _mean_valid(r[:, :, a, m])
    return stats
