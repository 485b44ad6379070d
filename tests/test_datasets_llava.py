"""LLaVAJsonDataset: the sample contract (images, one IMAGE_TOKEN_INDEX each, answer-only labels), pad/resize
aspect, text-only and multi-image records, bad records named by file and record, counted skips/truncations."""
import json

import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from llmvision.datasets import BadSampleError
from llmvision.datasets.llava_json import LLaVAJsonDataset
from llmvision.datasets.synthetic import build_llm_tokenizer
from llmvision.datasets.transforms.square_images import CLIP_MEAN_RGB
from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX

RED = (220, 30, 30)
GOOD = [
    {'id': 'a', 'image': 'wide.png', 'question_type': 'colour',
     'conversations': [{'from': 'human', 'value': '<image>\nWhat color is the square?'},
                       {'from': 'gpt', 'value': 'red'}]},
    {'id': 'b', 'conversations': [{'from': 'human', 'value': 'Is there a star?'}, {'from': 'gpt', 'value': 'no'}]},
    {'id': 'c', 'image': ['wide.png', 'tall.png'],
     'conversations': [{'from': 'human', 'value': '<image> and <image>\nHow many red shapes?'},
                       {'from': 'gpt', 'value': 'two'}, {'from': 'human', 'value': 'Is there a circle?'},
                       {'from': 'gpt', 'value': 'no'}]},
]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    d = tmp_path_factory.mktemp('llava')
    Image.new('RGB', (40, 20), RED).save(d / 'wide.png')   # W x H
    Image.new('RGB', (10, 30), (30, 80, 220)).save(d / 'tall.png')
    build_llm_tokenizer(d / 'tok')
    return d


def _ds(root, records, name='ann.json', **kw):
    (root / name).write_text(json.dumps(records))
    kw.setdefault('encoder', dict(type=ConversationEncoder, tokenizer=str(root / 'tok'), template='chatml'))
    return LLaVAJsonDataset(str(root / name), image_size=kw.pop('image_size', 16), data_prefix=dict(img=str(root)),
                            **kw)


def test_sample_contract(root):
    ds = _ds(root, GOOD)
    assert len(ds) == 3
    one, text, two = ds[0], ds[1], ds[2]
    assert one['inputs'].shape == (1, 3, 16, 16) and one['inputs'].dtype == torch.uint8
    assert text['inputs'].shape == (0, 3, 16, 16) and two['inputs'].shape == (2, 3, 16, 16)
    for out, n in ((one, 1), (text, 0), (two, 2)):
        s = out['data_samples']
        assert (s.input_ids == IMAGE_TOKEN_INDEX).sum() == n == s.num_images == len(s.img_paths)
        assert s.input_ids.dtype == torch.long and s.labels.shape == s.input_ids.shape
        assert not s.truncated
    s = one['data_samples']
    assert s.question_type == 'colour' and s.sample_id == 'a' and text['data_samples'].question_type is None
    tok = ds.encoder.tokenizer
    assert tok.decode(s.labels[s.labels != IGNORE_INDEX]) == 'red<|im_end|>'
    assert tok.decode(two['data_samples'].labels[two['data_samples'].labels != IGNORE_INDEX]) == \
        'two<|im_end|>no<|im_end|>'
    # images keep their order: wide (red) first, tall (blue) second
    assert two['inputs'][0, 0, 8, 8] > 200 and two['inputs'][1, 2, 8, 8] > 200
    batch = pseudo_collate([one, text, two])
    assert len(batch['inputs']) == 3 and len(batch['data_samples']) == 3


def test_test_mode_prompt_and_answer(root):
    ds = _ds(root, GOOD, test_mode=True)
    s = ds[2]['data_samples']
    assert (s.labels == IGNORE_INDEX).all() and s.gt_answer == 'no'
    assert ds.encoder.tokenizer.decode(s.input_ids[s.input_ids >= 0]).endswith(
        'Is there a circle?<|im_end|>\n<|im_start|>assistant\n')


def test_aspect_pad_and_resize(root):
    pad = _ds(root, GOOD[:1], image_aspect='pad', image_size=20)[0]['inputs'][0]   # 40x20 -> 40x40 -> 20x20
    assert pad[:, 10, 10].tolist() == list(RED)
    assert pad[:, 1, 10].tolist() == list(CLIP_MEAN_RGB) and pad[:, 18, 10].tolist() == list(CLIP_MEAN_RGB)
    rs = _ds(root, GOOD[:1], image_aspect='resize', image_size=20)[0]['inputs'][0]
    assert (rs.permute(1, 2, 0) == torch.tensor(RED, dtype=torch.uint8)).all()
    noise = _ds(root, GOOD[:1], image_ablation='noise')
    a, b = noise[0]['inputs'], noise[0]['inputs']
    assert torch.equal(a, b) and a.float().std() > 50  # seeded by sample id, really noise
    blank = _ds(root, GOOD[:1], image_ablation='blank')[0]['inputs'][0]
    assert (blank.permute(1, 2, 0) == torch.tensor(CLIP_MEAN_RGB, dtype=torch.uint8)).all()


@pytest.mark.parametrize('record, msg', [
    ({'id': 'x', 'image': 'wide.png', 'conversations': [{'from': 'human', 'value': 'no placeholder'},
                                                       {'from': 'gpt', 'value': 'a'}]}, '0 <image> placeholders but 1'),
    ({'id': 'x', 'conversations': [{'from': 'human', 'value': '<image>\nq'}, {'from': 'gpt', 'value': 'a'}]},
     '1 <image> placeholders but 0'),
    ({'id': 'x', 'image': 'gone.png', 'conversations': [{'from': 'human', 'value': '<image>\nq'},
                                                       {'from': 'gpt', 'value': 'a'}]}, 'gone.png.*not found'),
    ({'id': 'x', 'conversations': [{'from': 'human', 'value': 'q'}, {'from': 'human', 'value': 'q'}]},
     'not alternating'),
    ({'id': 'x', 'conversations': [{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': ''}]}, 'empty answer'),
    ({'id': 'x', 'conversations': [{'from': 'human', 'value': 'q'}]}, 'must end with an answer'),
    ({'id': 'x'}, 'conversations'),
])
def test_bad_records_name_file_and_record(root, record, msg):
    with pytest.raises(BadSampleError, match=rf'bad\.json: record 1 \(id .x.\): .*{msg}'):
        _ds(root, [GOOD[1], record], name='bad.json')
    ds = _ds(root, [GOOD[1], record, GOOD[0]], name='bad.json', on_bad_sample='skip')
    assert len(ds) == 2 and ds.num_skipped == 1 and 'record 1' in ds.bad_samples.reasons[0]


def test_corrupt_image_is_a_counted_skip_in_training(root):
    (root / 'late.png').write_bytes(b'not a png')  # exists (passes the load-time check), cannot be decoded
    rec = dict(GOOD[0], id='late', image='late.png')
    ds = _ds(root, [rec, GOOD[1]], name='late.json', on_bad_sample='skip')
    out = ds[0]  # corrupt image: skipped, another index fetched
    assert ds.num_skipped >= 1 and out['data_samples'].sample_id == 'b'  # refetch is random: may retry 0
    with pytest.raises(BadSampleError, match='late.png.*cannot read image'):
        _ds(root, [rec], name='late.json', test_mode=True)[0]


def test_truncation_counted(root):
    enc = dict(type=ConversationEncoder, tokenizer=str(root / 'tok'), template='chatml', max_length=12)
    ds = _ds(root, [GOOD[1]] * 3, name='long.json', encoder=enc)
    for i in range(3):
        s = ds[i]['data_samples']
        assert s.truncated and len(s.input_ids) == 12
    assert ds.num_truncated == 3
