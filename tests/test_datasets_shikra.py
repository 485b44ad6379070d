"""Shikra-style REC jsonl reader: conversations, targets in the square frame, sizes from the image, bad lines."""
import json

import pytest
import torch

from llmvision.datasets.bad_samples import BadSampleError
from llmvision.datasets.shikra_rec import ShikraRECDataset
from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.models.lmm.ref_vlm.tokens import load_ref_vlm_tokenizer
from llmvision.structures.boxes import cxcywh_to_xyxy
from llmvision.structures.square_frame import frame_to_pixels


def _write(path, lines):
    path.write_text(''.join((ln if isinstance(ln, str) else json.dumps(ln)) + '\n' for ln in lines))
    return path


@pytest.fixture(scope='module')
def encoder(synthetic_data):
    return ConversationEncoder(load_ref_vlm_tokenizer(str(synthetic_data.llm_tokenizer)), 'chatml', max_length=128,
                               system='')


def test_reads_lines_and_maps_boxes(tmp_path, synthetic_data, encoder):
    lines = [{'img_path': 'val_000000.png', 'expression': 'the  red circle', 'bbox': [10, 20, 60, 80],
              'height': 256, 'width': 320},
             {'img_path': 'val_000001.png', 'expression': 'blue star', 'bbox': [0, 0, 32, 16]}]  # size from image
    ds = ShikraRECDataset(str(_write(tmp_path / 'rec.jsonl', lines)), encoder, image_size=32, split='testA',
                          data_prefix=dict(img=str(synthetic_data.image_dir)), test_mode=True)
    assert len(ds) == 2
    s = ds[0]['data_samples']
    assert s.metainfo['gt_bbox'] == [10.0, 20.0, 60.0, 80.0] and s.metainfo['split'] == 'testA'
    assert s.metainfo['gt_answer'] == '<Phrase>the red circle</Phrase>(<Unit>box</Unit>[0]<REF>)'
    back = frame_to_pixels(cxcywh_to_xyxy(s.ref_boxes), s.metainfo['square_frame'])
    assert torch.allclose(back, torch.tensor([[10.0, 20, 60, 80]]), atol=1e-4)
    assert ds[1]['data_samples'].metainfo['ori_shape'] == (256, 320)


def test_bad_lines(tmp_path, synthetic_data, encoder):
    lines = [{'img_path': 'val_000000.png', 'expression': 'x', 'bbox': [1, 1, 5, 5], 'height': 256, 'width': 320},
             {'img_path': 'val_000000.png', 'expression': 'x', 'bbox': [5, 5, 1, 1], 'height': 256, 'width': 320},
             'not json', {'expression': 'no image'}]
    path = _write(tmp_path / 'bad.jsonl', lines)
    kw = dict(image_size=32, data_prefix=dict(img=str(synthetic_data.image_dir)))
    with pytest.raises(BadSampleError, match='line 2'):
        ShikraRECDataset(str(path), encoder, **kw)
    ds = ShikraRECDataset(str(path), encoder, on_bad_sample='skip', **kw)
    assert len(ds) == 1 and ds.num_skipped == 3
    with pytest.raises(FileNotFoundError, match='Shikra'):
        ShikraRECDataset(str(tmp_path / 'missing.jsonl'), encoder, **kw)
