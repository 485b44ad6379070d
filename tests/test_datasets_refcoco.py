"""RefCOCODataset (refer layout) and MDETRRefDataset (MDETR json)."""
import json
import pickle

import pytest
import torch

from helpers import write_image
from llmvision.datasets import BadSampleError, MDETRRefDataset, RefCOCODataset
from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs

PIPELINE = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)]


def _refer(tmp_path, refs_extra=()):
    root = tmp_path / 'refer'
    (root / 'refcoco').mkdir(parents=True)
    names = ['COCO_train2014_000000000001.jpg', 'COCO_train2014_000000000002.jpg']
    write_image(root / 'train2014' / names[0], 40, 60, [(5, 6, 25, 36)])
    write_image(root / 'train2014' / names[1], 50, 30)
    inst = dict(images=[dict(id=1, file_name=names[0], height=40, width=60),
                        dict(id=2, file_name=names[1], height=50, width=30)],
                annotations=[dict(id=100, image_id=1, bbox=[5, 6, 20, 30], category_id=1),
                             dict(id=101, image_id=2, bbox=[0, 0, 10, 10], category_id=1)],
                categories=[dict(id=1, name='thing')])
    (root / 'refcoco' / 'instances.json').write_text(json.dumps(inst))
    refs = [dict(ref_id=0, ann_id=100, image_id=1, split='val',
                 sentences=[dict(sent='red thing on the left', sent_id=0, tokens=[]),
                            dict(sent='the red one', sent_id=1, tokens=[])]),
            dict(ref_id=1, ann_id=101, image_id=2, split='testA',
                 sentences=[dict(sent='top corner', sent_id=2, tokens=[])])] + list(refs_extra)
    with open(root / 'refcoco' / 'refs(unc).p', 'wb') as f:
        pickle.dump(refs, f)
    return root


def test_refer_layout_one_sample_per_sentence(tmp_path):
    root = _refer(tmp_path)
    ds = RefCOCODataset(data_root=str(root), split='val', data_prefix=dict(img='train2014'), pipeline=PIPELINE,
                        test_mode=True)
    assert len(ds) == 2
    info = ds.get_data_info(1)
    assert info['text'] == 'the red one' and info['tokens_positive'] == [[[0, 11]]]
    assert info['instances'] == [dict(bbox=[5.0, 6.0, 25.0, 36.0], bbox_label=0, ignore_flag=0)]
    assert (info['ref_id'], info['ann_id'], info['sent_id']) == (0, 100, 1)
    out = ds[0]
    s = out['data_samples']
    assert out['inputs'].shape == (3, 40, 60) and s.text == 'red thing on the left'
    assert s.gt_instances.bboxes.tolist() == [[5.0, 6.0, 25.0, 36.0]] and s.custom_entities is False
    pixel = out['inputs'][:, 20, 15].float()  # the painted box is where the gt box is (jpeg: lossy)
    assert (pixel - torch.tensor([255., 0., 0.])).abs().max() < 8
    assert len(RefCOCODataset(data_root=str(root), split='testA')) == 1


def test_refer_layout_errors(tmp_path):
    root = _refer(tmp_path, refs_extra=[dict(ref_id=5, ann_id=999, image_id=1, split='val',
                                             sentences=[dict(sent='ghost', sent_id=9)])])
    with pytest.raises(ValueError, match="split 'testB' not in"):
        RefCOCODataset(data_root=str(root), split='testB', on_bad_sample='skip')
    with pytest.raises(BadSampleError, match=r'refs\(unc\)\.p: ref #2 \(ref_id 5\): ann_id 999'):
        RefCOCODataset(data_root=str(root), split='val')
    ds = RefCOCODataset(data_root=str(root), split='val', on_bad_sample='skip')
    assert len(ds) == 2 and ds.num_skipped == 1
    with pytest.raises(FileNotFoundError, match=r'refs\(umd\)\.p'):
        RefCOCODataset(data_root=str(root), split_by='umd')


def _mdetr(tmp_path, caption='the man left of the dog', spans=((4, 7),)):
    write_image(tmp_path / 'img' / 'a.jpg', 40, 60)
    data = dict(images=[dict(id=0, file_name='a.jpg', height=40, width=60, caption=caption, original_id=77),
                        dict(id=1, file_name='a.jpg', height=40, width=60, caption='a dog')],
                annotations=[dict(id=0, image_id=0, bbox=[2, 3, 10, 12], tokens_positive=[list(s) for s in spans],
                                  category_id=1),
                             dict(id=1, image_id=1, bbox=[30, 3, 10, 12], category_id=1)])
    (tmp_path / 'mdetr.json').write_text(json.dumps(data))
    return str(tmp_path / 'mdetr.json')


def test_mdetr_json(tmp_path):
    ds = MDETRRefDataset(ann_file=_mdetr(tmp_path), data_prefix=dict(img=str(tmp_path / 'img')), pipeline=PIPELINE)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['text'] == 'the man left of the dog' and info['tokens_positive'] == [[[4, 7]]]
    assert info['instances'][0]['bbox'] == [2.0, 3.0, 12.0, 15.0] and info['original_id'] == 77
    assert ds.get_data_info(1)['tokens_positive'] == [[[0, 5]]]  # no spans -> whole expression
    assert ds[1]['data_samples'].gt_instances.bboxes.tolist() == [[30.0, 3.0, 40.0, 15.0]]


def test_mdetr_bad_spans(tmp_path):
    ann = _mdetr(tmp_path, spans=((4, 99),))
    with pytest.raises(BadSampleError, match=r'mdetr\.json: image id 0: annotation id 0 tokens_positive'):
        MDETRRefDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'img')))
    ds = MDETRRefDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'img')), on_bad_sample='skip')
    assert len(ds) == 1 and ds.num_skipped == 1


def test_rec_heuristic_reaches_the_samples_from_the_config(synthetic_data):
    """The RefCOCO config bases switch LLMDet's REC heuristic on through the dataset metainfo."""
    from llmvision.registry import DATASETS
    from llmvision.utils.config import load_config
    cfg = load_config('configs/grounding_dino/grounding_dino_tiny_synthetic_refcoco.py',
                      {'test_dataloader.dataset.data_root': str(synthetic_data.refcoco_root)})
    assert 'rec_heuristic' not in cfg.model.test_cfg
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert dataset[0]['data_samples'].metainfo['rec_heuristic'] == dict(all_captions=True)
