"""Transforms: parity with mmcv's Resize/RandomFlip, caption flipping, box consistency end to end."""
import copy
import random

import mmcv.transforms as mmcv_t
import numpy as np
import pytest
import torch
from mmcv.transforms import RandomChoice

from helpers import PALETTE, grounding_record, write_image, write_jsonl
from llmvision.datasets import ODVGDataset
from llmvision.datasets.transforms import (
    FilterEmptyBoxes,
    FixScaleResize,
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    RandomChoiceResize,
    RandomCrop,
    RandomFlip,
    ResizeShortSide,
    keep_ratio_size,
    swap_left_right,
)


def _results(h=60, w=90, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    boxes = np.array([[3, 4, 40, 30], [50, 10, 89, 59]], np.float32)
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), gt_bboxes=boxes,
                gt_bboxes_labels=np.array([0, 1]), gt_ignore_flags=np.zeros(2, bool))


@pytest.mark.parametrize('hw', [(60, 90), (90, 60), (37, 211)])
def test_fix_scale_resize_matches_mmcv_keep_ratio_resize(hw):
    ours = FixScaleResize(scale=(80, 133))(_results(*hw))
    ref = mmcv_t.Resize(scale=(133, 80), keep_ratio=True)(_results(*hw))
    assert ours['img_shape'] == ref['img_shape']
    assert np.array_equal(ours['img'], ref['img'])
    np.testing.assert_allclose(ours['gt_bboxes'], ref['gt_bboxes'], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(ours['scale_factor'], ref['scale_factor'], rtol=1e-6)
    h, w = ours['img_shape']
    assert min(h, w) <= 80 and max(h, w) <= 133 and (min(h, w) == 80 or max(h, w) == 133)


def test_keep_ratio_size_caps_long_side():
    assert keep_ratio_size((480, 640), 800, 1333) == (800, 1067)
    assert keep_ratio_size((100, 1000), 800, 1333) == (133, 1333)
    assert keep_ratio_size((480, 640), 800, None) == (800, 1067)


def test_random_choice_resize_draws_listed_sides():
    random.seed(0)
    t = RandomChoiceResize(scales=[(20, 1333), 30, 40], max_long_side=1333)
    sides = {min(t(_results())['img_shape']) for _ in range(30)}
    assert sides == {20, 30, 40}
    t = RandomChoiceResize(short_side_range=(25, 35), max_long_side=1333)
    sides = {min(t(_results())['img_shape']) for _ in range(30)}
    assert sides <= set(range(25, 36)) and len(sides) > 3
    with pytest.raises(ValueError):
        RandomChoiceResize()


def test_flip_matches_mmcv_random_flip():
    ours = RandomFlip(prob=1.0)(_results())
    ref = mmcv_t.RandomFlip(prob=1.0, direction='horizontal')(_results())
    assert np.array_equal(ours['img'], ref['img'])
    np.testing.assert_allclose(ours['gt_bboxes'], ref['gt_bboxes'])
    assert ours['flip'] is True and ours['flip_direction'] == 'horizontal'
    assert RandomFlip(prob=0.0)(_results())['flip'] is False


def test_swap_left_right_moves_spans():
    text = 'The left cup, right of the Left plate; leftover RIGHT.'
    new, map_pos = swap_left_right(text)
    assert new == 'The right cup, left of the Right plate; leftover LEFT.'
    results = dict(img=np.zeros((4, 4, 3), np.uint8), text=text,
                   tokens_positive=[[[4, 12]], [[14, 19], [27, 37]], [[39, 47]]],
                   phrases=['left cup', 'Left plate'], long_caption='to the left.')
    spans_before = [[text[s:e] for s, e in sp] for sp in results['tokens_positive']]
    assert spans_before == [['left cup'], ['right', 'Left plate'], ['leftover']]
    out = RandomFlip(prob=1.0)(results)
    assert [[out['text'][s:e] for s, e in sp] for sp in out['tokens_positive']] == [
        ['right cup'], ['left', 'Right plate'], ['leftover']]
    assert out['phrases'] == ['right cup', 'Right plate'] and out['long_caption'] == 'to the right.'


def test_flip_leaves_category_names():
    results = dict(img=np.zeros((4, 4, 3), np.uint8), text=['left hand', 'cat'], tokens_positive=None)
    assert RandomFlip(prob=1.0)(results)['text'] == ['left hand', 'cat']


def test_filter_empty_boxes_clips_and_drops():
    r = _results()
    r['gt_bboxes'] = np.array([[-5, 0, 10, 10], [85, 5, 120, 20], [89.5, 5, 95, 20]], np.float32)
    r['gt_bboxes_labels'] = np.array([3, 4, 5])
    r['gt_ignore_flags'] = np.zeros(3, bool)
    out = FilterEmptyBoxes(min_size=1.0)(copy.deepcopy(r))
    np.testing.assert_allclose(out['gt_bboxes'], [[0, 0, 10, 10], [85, 5, 90, 20]])
    assert out['gt_bboxes_labels'].tolist() == [3, 4] and len(out['gt_ignore_flags']) == 2
    r['gt_bboxes'] = r['gt_bboxes'][2:]
    for k in ('gt_bboxes_labels', 'gt_ignore_flags'):
        r[k] = r[k][2:]
    assert FilterEmptyBoxes(keep_empty=False)(copy.deepcopy(r)) is None
    assert len(FilterEmptyBoxes(keep_empty=True)(r)['gt_bboxes']) == 0


def _box_colours(img_chw, boxes):
    """Mean BGR colour of the central half of each box: ``[N, 3]``."""
    out = []
    for x1, y1, x2, y2 in boxes.tolist():
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        patch = img_chw[:, int(cy - hh + 0.5):int(cy + hh + 0.5) + 1, int(cx - hw + 0.5):int(cx + hw + 0.5) + 1]
        out.append(patch.float().mean((1, 2)))
    return torch.stack(out)


@pytest.mark.parametrize('seed,crop', [(0, False), (1, False), (2, False), (3, False), (0, True), (1, True),
                                       (4, True), (5, True)])
def test_boxes_stay_on_their_objects_through_the_training_pipeline(tmp_path, seed, crop):
    boxes = [(4, 6, 30, 40), (40, 10, 70, 30), (75, 35, 118, 78)]
    write_image(tmp_path / 'img' / 'a.png', 80, 120, boxes)
    caption = 'red on the left, green, blue to the right.'
    rec = grounding_record('a.png', 80, 120, caption,
                           [(list(b), p, s) for b, p, s in zip(boxes, ['red', 'green', 'blue'],
                                                               [[[0, 3]], [[17, 22]], [[24, 28]]])])
    ann = write_jsonl(tmp_path / 'a.jsonl', [rec])
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=RandomFlip, prob=0.5),
                dict(type=RandomChoiceResize, scales=[50, 64, 100], max_long_side=160),
                dict(type=FilterEmptyBoxes), dict(type=PackDetInputs)]
    if crop:  # LLMDet/DETR recipe: resize, or resize -> crop -> resize
        pipeline[3] = dict(type=RandomChoice, transforms=[
            [dict(type=RandomChoiceResize, scales=[50, 64, 100], max_long_side=160)],
            [dict(type=RandomChoiceResize, scales=[70, 80], max_long_side=160),
             dict(type=RandomCrop, crop_size_range=(40, 60)),
             dict(type=RandomChoiceResize, scales=[50, 64, 100], max_long_side=160)]])
    ds = ODVGDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'img')), pipeline=pipeline,
                     private_rng=False)  # driven by random.seed below
    random.seed(seed)
    out = ds[0]
    s = out['data_samples']
    assert tuple(out['inputs'].shape[1:]) == s.img_shape
    colours = _box_colours(out['inputs'], s.gt_instances.bboxes)
    expected = torch.tensor([PALETTE[k] for k in s.gt_instances.labels.tolist()], dtype=torch.float32)
    assert torch.allclose(colours, expected, atol=25), (colours, expected)
    if crop:
        return
    # boxes map back to the original annotation through flip and scale_factor
    b = s.gt_instances.bboxes / torch.tensor(s.scale_factor * 2)
    if s.flip:
        b = torch.stack([120 - b[:, 2], b[:, 1], 120 - b[:, 0], b[:, 3]], 1)
    assert torch.allclose(b, torch.tensor(boxes, dtype=torch.float32), atol=1.0)
    words = [[s.text[a:e] for a, e in sp] for sp in s.tokens_positive]
    assert words == [['red'], ['green'], ['blue']]
    assert ('right' in s.text.split(',')[0]) == bool(s.flip)


def test_resize_short_side_repr_and_scale_factor_relative_to_original():
    r = ResizeShortSide(short_side=30, max_long_side=None)(_results())
    r = ResizeShortSide(short_side=120, max_long_side=None)(r)
    assert r['img_shape'] == (120, 180)
    np.testing.assert_allclose(r['scale_factor'], (2.0, 2.0))
    np.testing.assert_allclose(r['gt_bboxes'], _results()['gt_bboxes'] * 2, atol=1e-4)
    assert 'short_side=120' in repr(ResizeShortSide(short_side=120))


def test_random_crop_shifts_clips_and_drops_boxes():
    r = _results(60, 90)
    yy, xx = np.mgrid[:60, :90]
    r['img'] = np.stack([yy, xx, np.zeros_like(yy)], -1).astype(np.uint8)  # pixel = its own (y, x)
    r['gt_bboxes'] = np.array([[3, 4, 40, 30], [50, 10, 89, 59], [0, 0, 2, 2]], np.float32)
    r['gt_bboxes_labels'] = np.array([0, 1, 2])
    r['gt_ignore_flags'] = np.zeros(3, bool)
    for seed in range(6):
        random.seed(seed)
        out = RandomCrop(crop_size_range=(30, 50))(copy.deepcopy(r))
        ch, cw = out['img_shape']
        assert 30 <= ch <= 50 and 30 <= cw <= 50 and out['img'].shape[:2] == (ch, cw)
        y0, x0 = int(out['img'][0, 0, 0]), int(out['img'][0, 0, 1])
        assert np.array_equal(out['img'], r['img'][y0:y0 + ch, x0:x0 + cw])
        ref = r['gt_bboxes'] - np.array([x0, y0, x0, y0], np.float32)
        ref[:, 0::2] = ref[:, 0::2].clip(0, cw)
        ref[:, 1::2] = ref[:, 1::2].clip(0, ch)
        keep = (ref[:, 2] > ref[:, 0]) & (ref[:, 3] > ref[:, 1])
        np.testing.assert_allclose(out['gt_bboxes'], ref[keep])
        assert out['gt_bboxes_labels'].tolist() == r['gt_bboxes_labels'][keep].tolist()
    r['gt_bboxes'] = np.array([[0, 0, 1, 1]], np.float32)
    r['gt_bboxes_labels'], r['gt_ignore_flags'] = np.array([0]), np.zeros(1, bool)
    random.seed(0)
    results = [RandomCrop((20, 30), allow_negative_crop=False)(copy.deepcopy(r)) for _ in range(20)]
    assert any(x is None for x in results)
    assert all(x is None or len(x['gt_bboxes']) == 1 for x in results)
