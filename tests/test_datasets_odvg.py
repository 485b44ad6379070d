"""ODVGDataset: grounding and detection forms, full pipeline output, bad-input handling."""
import json
import logging

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from helpers import grounding_record, write_image, write_jsonl
from llmvision.datasets import BadSampleError, ODVGDataset
from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.structures import DetDataSample

PIPELINE = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)]
CAPTION = 'a red box left of two green boxes.'


@pytest.fixture
def grounding_files(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 40, 60, [(2, 2, 12, 20), (30, 5, 40, 15), (45, 20, 58, 38)])
    write_image(tmp_path / 'img' / 'b.png', 50, 30, [(1, 1, 10, 10)])
    recs = [grounding_record('a.png', 40, 60, CAPTION,
                             [([2, 2, 12, 20], 'a red box', [[0, 9]]),
                              ([[30, 5, 40, 15], [45, 20, 58, 38]], 'two green boxes', [[18, 33]])],
                             long_caption='A long story about boxes.'),
            grounding_record('b.png', 50, 30, 'one box.', [([1, 1, 10, 10], 'one box', [[0, 7]])])]
    return tmp_path, write_jsonl(tmp_path / 'train.jsonl', recs)


def build(root, ann, **kw):
    kw.setdefault('pipeline', PIPELINE)
    return ODVGDataset(ann_file=ann, data_prefix=dict(img=str(root / 'img')), **kw)


def test_grounding_form_data_info(grounding_files):
    root, ann = grounding_files
    ds = build(root, ann)
    assert len(ds) == 2 and ds.num_skipped == 0
    info = ds.get_data_info(0)
    assert info['text'] == CAPTION and info['custom_entities'] is False
    assert info['tokens_positive'] == [[[0, 9]], [[18, 33]]]
    assert [CAPTION[s:e] for s, e in info['tokens_positive'][1]] == ['two green boxes']
    assert info['phrases'] == ['Red box.', 'Green boxes.']  # LLMDet's clean_phrase
    assert info['long_caption'] == 'A long story about boxes.'
    raw = build(root, ann, clean_region_phrases=False).get_data_info(0)
    assert raw['phrases'] == ['a red box', 'two green boxes'] and raw['tags'] == []
    # plural region: both boxes get the region's label 1
    assert [i['bbox_label'] for i in info['instances']] == [0, 1, 1]
    assert info['instances'][2]['bbox'] == [45.0, 20.0, 58.0, 38.0]
    assert 'long_caption' not in ds.get_data_info(1)


def test_grounding_pipeline_output(grounding_files):
    root, ann = grounding_files
    out = build(root, ann)[0]
    assert out['inputs'].dtype == torch.uint8 and out['inputs'].shape == (3, 40, 60)
    # BGR as loaded by mmcv: the first box is painted (255, 0, 0) in BGR order
    assert out['inputs'][:, 10, 5].tolist() == [255, 0, 0]
    s = out['data_samples']
    assert isinstance(s, DetDataSample)
    assert s.gt_instances.bboxes.dtype == torch.float32 and s.gt_instances.bboxes.shape == (3, 4)
    assert s.gt_instances.labels.dtype == torch.long and s.gt_instances.labels.tolist() == [0, 1, 1]
    for key in ('img_id', 'img_path', 'ori_shape', 'img_shape', 'text', 'custom_entities',
                'tokens_positive', 'long_caption', 'phrases'):
        assert key in s.metainfo, key
    assert s.ori_shape == (40, 60) and s.img_shape == (40, 60)


def test_caption_cleaning_and_tags(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 40, 60)
    long = 'A red box sits on a table, possibly a desk. There is no cat. Two green boxes are near it.'
    rec = grounding_record('a.png', 40, 60, CAPTION, [([2, 2, 12, 20], 'a red box', [[0, 9]])], long_caption=long)
    rec['tags'] = ['red box', 'green boxes']
    speculative = grounding_record('a.png', 40, 60, CAPTION, [([2, 2, 12, 20], 'the 2 red boxes', [[0, 9]])],
                                   long_caption='It seems empty.')
    ann = write_jsonl(tmp_path / 'train.jsonl', [rec, speculative])
    ds = build(tmp_path, ann, pipeline=PIPELINE + [])
    info = ds.get_data_info(0)
    assert info['long_caption'] == 'A red box sits on a table. Two green boxes are near it.'
    assert info['tags'] == ['red box', 'green boxes']
    assert ds[0]['data_samples'].metainfo['tags'] == ['red box', 'green boxes']
    # everything speculative: the raw caption is kept rather than an empty target
    assert ds.get_data_info(1)['long_caption'] == 'It seems empty.'
    assert ds.get_data_info(1)['phrases'] == ['Red boxes.']
    assert build(tmp_path, ann, clean_caption=False).get_data_info(0)['long_caption'] == long
    rec['tags'] = 'red box'
    bad = write_jsonl(tmp_path / 'bad.jsonl', [rec])
    with pytest.raises(BadSampleError, match="'tags' must be a list of strings"):
        build(tmp_path, bad, on_bad_sample='raise')


def test_detection_form(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 30, 30)
    (tmp_path / 'labels.json').write_text(json.dumps({'0': 'cat', '2': 'dog', '1': 'remote control'}))
    rec = dict(filename='a.png', height=30, width=30,
               detection=dict(instances=[dict(bbox=[1, 1, 9, 9], label=2, category='dog'),
                                         dict(bbox=[3, 3, 20, 20], label=0, category='cat')]))
    ann = write_jsonl(tmp_path / 'det.jsonl', [rec])
    ds = build(tmp_path, ann, label_map_file=str(tmp_path / 'labels.json'))
    info = ds.get_data_info(0)
    assert info['text'] == ['cat', 'remote control', 'dog'] and info['custom_entities'] is True
    assert [i['bbox_label'] for i in info['instances']] == [2, 0]
    assert ds.metainfo['classes'] == ('cat', 'remote control', 'dog')
    s = ds[0]['data_samples']
    assert s.gt_instances.labels.tolist() == [2, 0] and s.custom_entities is True


# ------------------------------------------------------------------ bad input
def _one_bad(tmp_path, bad_line, label_map=None):
    """A file with one good line, one bad line (line 2), one good line."""
    write_image(tmp_path / 'img' / 'a.png', 40, 60)
    good = grounding_record('a.png', 40, 60, 'a box.', [([1, 1, 10, 10], 'a box', [[0, 5]])])
    if label_map is not None:
        (tmp_path / 'labels.json').write_text(json.dumps(label_map))
        good = dict(filename='a.png', height=40, width=60,
                    detection=dict(instances=[dict(bbox=[1, 1, 10, 10], label=0, category='cat')]))
    return write_jsonl(tmp_path / 'ann.jsonl', [good, bad_line, good])


def _det(label, category='cat', bbox=(1, 1, 5, 5)):
    return dict(filename='a.png', height=40, width=60,
                detection=dict(instances=[dict(bbox=list(bbox), label=label, category=category)]))


BAD_LINES = {
    'malformed_json': ('{"filename": "a.png", "height": 40,', None, 'malformed json'),
    'box_fully_outside': (grounding_record('a.png', 40, 60, 'a box.', [([70, 1, 80, 10], 'a box', [[0, 5]])]),
                          None, 'fully outside'),
    'degenerate_box': (grounding_record('a.png', 40, 60, 'a box.', [([10, 1, 10, 10], 'a box', [[0, 5]])]),
                       None, 'degenerate'),
    'empty_caption': (grounding_record('a.png', 40, 60, '  ', [([1, 1, 10, 10], 'a box', [[0, 1]])]),
                      None, 'caption is empty'),
    'span_outside_caption': (grounding_record('a.png', 40, 60, 'a box.', [([1, 1, 10, 10], 'a box', [[2, 40]])]),
                             None, 'outside the caption'),
    'missing_size': ({'filename': 'a.png', 'grounding': {'caption': 'x', 'regions': []}}, None, "'height'"),
    'unknown_label': (_det(7), {'0': 'cat'}, 'not in the label map'),
    'category_mismatch': (_det(0, category='dog'), {'0': 'cat'}, 'disagrees with the label map'),
}


@pytest.mark.parametrize('case', sorted(BAD_LINES))
def test_bad_line_raises_with_file_and_line(tmp_path, case):
    line, label_map, needle = BAD_LINES[case]
    ann = _one_bad(tmp_path, line, label_map)
    kw = dict(label_map_file=str(tmp_path / 'labels.json')) if label_map else {}
    with pytest.raises(BadSampleError) as exc:
        build(tmp_path, ann, **kw)
    msg = str(exc.value)
    assert f'{ann}, line 2' in msg and needle in msg, msg


@pytest.mark.parametrize('case', sorted(BAD_LINES))
def test_bad_line_skipped_and_counted(tmp_path, case):
    line, label_map, needle = BAD_LINES[case]
    ann = _one_bad(tmp_path, line, label_map)
    kw = dict(label_map_file=str(tmp_path / 'labels.json')) if label_map else {}
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        ds = build(tmp_path, ann, on_bad_sample='skip', **kw)
    finally:
        logger.removeHandler(handler)
    assert len(ds) == 2 and ds.num_skipped == 1
    assert [d['img_id'] for d in (ds.get_data_info(0), ds.get_data_info(1))] == [0, 2]
    assert needle in ds.bad_samples.reasons[0]
    assert any('skipped bad sample' in r.getMessage() and 'line 2' in r.getMessage() for r in records)


def test_max_bad_samples_exceeded(tmp_path):
    ann = _one_bad(tmp_path, 'not json at all')
    with pytest.raises(BadSampleError, match='max_bad_samples=0'):
        build(tmp_path, ann, on_bad_sample='skip', max_bad_samples=0)


def test_partly_outside_box_is_clipped(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 40, 60)
    rec = grounding_record('a.png', 40, 60, 'a box.', [([-5, 30, 20, 55], 'a box', [[0, 5]])])
    ds = build(tmp_path, write_jsonl(tmp_path / 'a.jsonl', [rec]))
    assert ds.get_data_info(0)['instances'][0]['bbox'] == [0.0, 30.0, 20.0, 40.0]


@pytest.fixture
def image_problem_files(tmp_path):
    write_image(tmp_path / 'img' / 'good.png', 40, 60)
    (tmp_path / 'img' / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage, not an image')
    recs = [grounding_record(name, 40, 60, 'a box.', [([1, 1, 10, 10], 'a box', [[0, 5]])])
            for name in ('good.png', 'missing.png', 'corrupt.png')]
    return tmp_path, write_jsonl(tmp_path / 'ann.jsonl', recs)


@pytest.mark.parametrize('idx,needle', [(1, 'image file not found'), (2, 'cannot read image|corrupt')])
def test_bad_image_raises_naming_file(image_problem_files, idx, needle):
    root, ann = image_problem_files
    ds = build(root, ann)
    with pytest.raises(BadSampleError, match=needle) as exc:
        ds[idx]
    assert ds.get_data_info(idx)['img_path'] in str(exc.value)


def test_bad_image_skip_refetches_and_counts(image_problem_files):
    root, ann = image_problem_files
    ds = build(root, ann, on_bad_sample='skip')
    torch.manual_seed(0)
    np.random.seed(0)
    out = ds[1]  # missing -> skipped, another random index is fetched (mmengine refetch)
    assert ds.num_skipped >= 1
    assert out['data_samples'].img_path.endswith('good.png')
    ds.bad_samples.max_bad_samples = ds.num_skipped
    with pytest.raises(BadSampleError, match='max_bad_samples'):
        ds[2]


def test_test_mode_never_skips_images(image_problem_files):
    root, ann = image_problem_files
    ds = build(root, ann, on_bad_sample='skip', test_mode=True)
    with pytest.raises(BadSampleError, match='not found'):
        ds[1]


def test_filter_empty_gt_only_in_training(tmp_path):
    write_image(tmp_path / 'img' / 'a.png', 40, 60)
    recs = [grounding_record('a.png', 40, 60, 'a box.', [([1, 1, 10, 10], 'a box', [[0, 5]])]),
            grounding_record('a.png', 40, 60, 'nothing here.', [])]
    ann = write_jsonl(tmp_path / 'a.jsonl', recs)
    assert len(build(tmp_path, ann, filter_cfg=dict(filter_empty_gt=True))) == 1
    assert len(build(tmp_path, ann, filter_cfg=dict(filter_empty_gt=True), test_mode=True)) == 2
    out = build(tmp_path, ann, test_mode=True)[1]
    assert out['data_samples'].gt_instances.bboxes.shape == (0, 4)
