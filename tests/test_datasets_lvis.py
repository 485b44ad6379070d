"""LVISDataset: category order, label<->cat_id mapping, per-image LVIS keys, parity with the lvis api."""
import json

import numpy as np
import pytest
from lvis import LVIS

from helpers import write_image
from llmvision.datasets import BadSampleError, LVISDataset
from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs

CATS = [dict(id=7, name='zebra', frequency='r'), dict(id=2, name='aerosol_can', frequency='f'),
        dict(id=4, name='bear', frequency='c')]


def _lvis_json(tmp_path, extra_ann=None):
    images = [dict(id=10, height=40, width=60, coco_url='http://images.cocodataset.org/val2017/000000000010.jpg',
                   neg_category_ids=[4], not_exhaustive_category_ids=[7]),
              dict(id=11, height=50, width=30, coco_url='http://images.cocodataset.org/train2017/000000000011.jpg',
                   neg_category_ids=[], not_exhaustive_category_ids=[])]
    anns = [dict(id=1, image_id=10, category_id=7, bbox=[1, 2, 10, 20], area=200),
            dict(id=2, image_id=10, category_id=2, bbox=[30, 5, 25, 30], area=750),
            dict(id=3, image_id=11, category_id=4, bbox=[-3, 10, 13, 10], area=130)]
    if extra_ann:
        anns.append(extra_ann)
    write_image(tmp_path / 'coco' / 'val2017' / '000000000010.jpg', 40, 60)
    write_image(tmp_path / 'coco' / 'train2017' / '000000000011.jpg', 50, 30)
    path = tmp_path / 'lvis.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=CATS)))
    return str(path)


def _build(ann, tmp_path, **kw):
    return LVISDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'coco')), **kw)


def test_categories_in_id_order_and_mapping(tmp_path):
    ds = _build(_lvis_json(tmp_path), tmp_path)
    assert ds.cat_ids == [2, 4, 7] and ds.class_names == ['aerosol_can', 'bear', 'zebra']
    assert ds.cat2label == {2: 0, 4: 1, 7: 2} and ds.metainfo['classes'] == ('aerosol_can', 'bear', 'zebra')
    info = ds.get_data_info(0)
    assert info['text'] == ['aerosol_can', 'bear', 'zebra'] and info['custom_entities'] is True
    assert info['neg_category_ids'] == [4] and info['not_exhaustive_category_ids'] == [7]
    assert info['img_path'].endswith('coco/val2017/000000000010.jpg')
    assert [i['bbox_label'] for i in info['instances']] == [2, 0]
    # partly outside -> clipped
    assert ds.get_data_info(1)['instances'][0]['bbox'] == [0.0, 10.0, 10.0, 20.0]


def test_parity_with_lvis_api(tmp_path):
    ann = _lvis_json(tmp_path)
    ds, api = _build(ann, tmp_path), LVIS(ann)
    assert ds.cat_ids == sorted(api.get_cat_ids())
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ref = api.load_anns(api.get_ann_ids(img_ids=[info['img_id']]))
        ours = [(ds.cat_ids[inst['bbox_label']], inst['bbox']) for inst in info['instances']]
        for (cat, box), r in zip(ours, ref):
            x, y, w, h = r['bbox']
            expect = np.clip([x, y, x + w, y + h], 0, [info['width'], info['height']] * 2)
            assert cat == r['category_id']
            np.testing.assert_allclose(box, expect)
        assert len(ours) == len(ref)


def test_pipeline_output(tmp_path):
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)]
    out = _build(_lvis_json(tmp_path), tmp_path, pipeline=pipeline, test_mode=True)[0]
    s = out['data_samples']
    assert out['inputs'].shape == (3, 40, 60)
    assert s.neg_category_ids == [4] and s.text == ['aerosol_can', 'bear', 'zebra']
    assert s.gt_instances.labels.tolist() == [2, 0]


def test_unknown_category_and_bad_box(tmp_path):
    ann = _lvis_json(tmp_path, extra_ann=dict(id=9, image_id=11, category_id=99, bbox=[1, 1, 5, 5]))
    with pytest.raises(BadSampleError, match=r'lvis\.json.*image id 11.*category_id 99'):
        _build(ann, tmp_path)
    ds = _build(ann, tmp_path, on_bad_sample='skip')
    assert len(ds) == 1 and ds.num_skipped == 1
    ann = _lvis_json(tmp_path, extra_ann=dict(id=9, image_id=11, category_id=2, bbox=[1, 1, 0, 5]))
    with pytest.raises(BadSampleError, match='annotation id 9 bbox is degenerate'):
        _build(ann, tmp_path)


def test_dataset_name_from_metainfo_reaches_the_sample(synthetic_data):
    """ODinW-style evaluation routes samples by ``dataset_name`` (MultiDatasetMetric)."""
    from llmvision.datasets import LVISDataset
    from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs
    ds = LVISDataset(ann_file=str(synthetic_data.lvis_val), data_prefix=dict(img=str(synthetic_data.image_dir)),
                     metainfo=dict(dataset_name='shapes'), test_mode=True,
                     pipeline=[dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)])
    assert ds[0]['data_samples'].metainfo['dataset_name'] == 'shapes'
