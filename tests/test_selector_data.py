"""REC selector data: refer records, candidate files and sources, fine-tuning data rules."""
import json
import pickle

import pytest
import torch

from llmvision.datasets.rec import (
    JsonCandidateSource,
    RECSelectorDataset,
    SyntheticCandidateSource,
    best_candidate,
    build_selector_samples,
    candidate_line,
    done_keys,
    load_refer_records,
    repair_tail,
    shuffled_copies,
)
from llmvision.models.selectors import BoxListPromptSerializer
from llmvision.structures import CandidateSet


@pytest.fixture()
def refer_root(tmp_path):
    """Two images; image 1 has two red circles (left / right) and a blue square."""
    inst = dict(
        images=[dict(id=1, file_name='a.png', height=100, width=200),
                dict(id=2, file_name='b.png', height=50, width=50)],
        categories=[dict(id=1, name='red circle'), dict(id=2, name='blue square')],
        annotations=[dict(id=10, image_id=1, category_id=1, bbox=[10, 10, 30, 30]),
                     dict(id=11, image_id=1, category_id=1, bbox=[150, 20, 30, 30]),
                     dict(id=12, image_id=1, category_id=2, bbox=[80, 50, 20, 20]),
                     dict(id=13, image_id=2, category_id=2, bbox=[5, 5, 10, 10])])
    refs = [dict(ref_id=0, ann_id=10, image_id=1, split='train',
                 sentences=[dict(sent='the red circle on the left', sent_id=7),
                            dict(sent='the leftmost red circle', sent_id=8)]),
            dict(ref_id=1, ann_id=12, image_id=1, split='train',
                 sentences=[dict(sent='the blue square', sent_id=9)]),
            dict(ref_id=2, ann_id=13, image_id=2, split='val',
                 sentences=[dict(sent='blue square', sent_id=10)])]
    d = tmp_path / 'refcoco'
    d.mkdir()
    (d / 'instances.json').write_text(json.dumps(inst))
    with open(d / 'refs(unc).p', 'wb') as f:
        pickle.dump(refs, f)
    return tmp_path


def test_refer_records(refer_root):
    recs = load_refer_records(str(refer_root), split='train', img_prefix='/imgs')
    assert [r['key'] for r in recs] == ['1_0_7', '1_0_8', '1_1_9']
    r = recs[0]
    assert r['gt_bbox'] == [10.0, 10.0, 40.0, 40.0] and r['img_path'] == '/imgs/a.png'
    assert len(r['image_anns']) == 3 and r['needs_reasoning'] and not recs[2]['needs_reasoning']
    with pytest.raises(ValueError, match="split 'testA' not in"):
        load_refer_records(str(refer_root), split='testA')
    with pytest.raises(FileNotFoundError, match='instances.json'):
        load_refer_records(str(refer_root), dataset='refcocog')


def test_json_source_and_resumable_file(tmp_path, refer_root):
    recs = load_refer_records(str(refer_root), split='train')
    path = str(tmp_path / 'c.jsonl')
    cs = CandidateSet('florence2', torch.tensor([[10., 10., 40., 40.]]), ['red circle'], [0.5])
    with open(path, 'w') as f:
        f.write(candidate_line(recs[0]['key'], cs))
        f.write(candidate_line(recs[1]['key'], CandidateSet('florence2', torch.zeros(0, 4), [])))
        f.write('{"key": "1_1_9", "source": "flor')  # a run killed mid-line
    assert done_keys(path) == {('1_0_7', 'florence2'), ('1_0_8', 'florence2')}
    repair_tail(path)
    src = JsonCandidateSource(path, missing='empty')
    got = src(recs[0])
    assert got.source == 'florence2' and got.bboxes.tolist() == [[10., 10., 40., 40.]]
    assert len(src(recs[1])) == 0 and len(src(recs[2])) == 0 and src.stats['missing_keys'] == 1
    with pytest.raises(KeyError, match="no candidates for key '1_1_9'"):
        JsonCandidateSource(path)(recs[2])
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"key": "a", "bboxes": [[1, 2, 3, 4]], "labels": ["x"]}\n{"key": "b"}\n')
    with pytest.raises(KeyError, match='bad.jsonl:2'):
        JsonCandidateSource(str(bad))
    two = tmp_path / 'two.json'  # a json list with two sources: pick one
    two.write_text(json.dumps([dict(key='k', source='a', bboxes=[], labels=[]),
                               dict(key='k', source='b', bboxes=[[0, 0, 1, 1]], labels=['x'])]))
    with pytest.raises(ValueError, match='several sources'):
        JsonCandidateSource(str(two))
    assert len(JsonCandidateSource(str(two), source='b')({'key': 'k'})) == 1


def test_best_candidate_and_shuffles():
    a = CandidateSet('a', torch.tensor([[0., 0., 10., 10.], [50., 50., 60., 60.]]), ['x', 'y'])
    b = CandidateSet('b', torch.tensor([[0., 0., 9., 9.], [49., 49., 61., 60.], [1., 1., 2., 2.]]),
                     ['p', 'q', 'r'])
    label, iou = best_candidate([a, b], [50., 50., 60., 60.])
    assert label == (0, 1) and iou == pytest.approx(1.0)
    assert best_candidate([CandidateSet('e', torch.zeros(0, 4), [])], [0, 0, 1, 1]) == (None, 0.0)
    import random
    copies = shuffled_copies([a, b], (1, 1), 4, random.Random(0))
    assert len(copies) == 4
    orders = set()
    for blocks, (bi, j) in copies:
        assert [blk.source for blk in blocks] == ['a', 'b']
        assert blocks[bi].labels[j] == 'q' and torch.equal(blocks[bi].bboxes[j], b.bboxes[1])
        orders.add(tuple(blocks[0].labels + blocks[1].labels))
    assert len(orders) == 4 and ('x', 'y', 'p', 'q', 'r') not in orders
    single = CandidateSet('s', torch.zeros(1, 4), ['z'])
    assert shuffled_copies([single], (0, 0), 4, random.Random(0)) == []  # nothing to shuffle


def test_builder_rules(refer_root):
    recs = load_refer_records(str(refer_root), split=None)
    table = {
        '1_0_7': CandidateSet('d', torch.tensor([[150., 20., 180., 50.], [11., 10., 40., 41.],
                                                 [-50., -50., -10., -10.]]), ['rc', 'rc', 'out']),
        '1_0_8': CandidateSet('d', torch.tensor([[20., 20., 60., 60.]]), ['rc']),  # IoU 0.19
        '1_1_9': CandidateSet('d', torch.zeros(0, 4), []),
        '2_2_10': CandidateSet('d', torch.tensor([[5., 5., 15., 15.], [0., 0., 4., 4.]]), ['a', 'b'])}
    source = lambda rec: table[rec['key']]  # noqa: E731
    ser = BoxListPromptSerializer()
    samples, st = build_selector_samples(recs, [source], ser, train=True, num_shuffles=4, clip=True,
                                         min_candidates=0)
    assert st['records'] == 4 and st['boxes_outside_image'] == 1
    assert st['best_iou_below_thr'] == 1 and st['no_candidates'] == 1
    # 1_0_7: 2 boxes left after clipping -> 1 distinct shuffle; 2_2_10: 2 boxes -> 1 shuffle
    assert st['samples'] == 4 and st['augmented_copies'] == 2
    for s in samples:
        chosen = s['candidates'][0].bboxes[int(s['answer'])]
        assert float(torch.tensor(s['gt_bbox']).sub(chosen).abs().max()) <= 1.0
        assert f"In box {s['answer']}:" in s['prompt']
    # test mode keeps every record once, even without a good candidate
    samples, st = build_selector_samples(recs, [source], ser, train=False)
    assert len(samples) == 4 and [s['answer'] for s in samples] == ['1', '0', None, '0']
    # inclusive threshold and the token limit
    iou = best_candidate([table['1_0_8']], recs[1]['gt_bbox'])[1]  # 400 / 2100
    for inclusive, kept in ((False, 2), (True, 3)):
        _, st = build_selector_samples(recs, [source], ser, train=True, iou_thr=iou,
                                       inclusive=inclusive, num_shuffles=0, min_candidates=0)
        assert st['samples'] == kept

    class CountTok:  # one token per character
        chat_template = 'x'

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return messages[-1]['content']

        def __call__(self, text, add_special_tokens):
            return {'input_ids': list(range(len(text)))}

    kept, _ = build_selector_samples(recs, [source], ser, train=True, num_shuffles=0)
    lengths = sorted(len(s['prompt']) for s in kept)  # the long expression has the longer prompt
    _, st = build_selector_samples(recs, [source], ser, CountTok(), train=True, num_shuffles=0,
                                   max_tokens=lengths[0])
    assert lengths[0] < lengths[1] and st['over_token_limit'] == 1 and st['samples'] == 1


def test_builder_released_recipe(refer_root):
    """Defaults = LLM-wrapper v1.0.0: skip <= 1 candidate, no clipping, the seed table of shuffles
    (N=2: seed 2; N=3: seeds 2, 6) with the order of ``random.seed(s); random.shuffle(range(N))``."""
    import random
    recs = load_refer_records(str(refer_root), split=None)
    boxes = torch.tensor([[150., 20., 180., 50.], [11., 10., 40., 41.], [-50., -50., -10., -10.]])
    table = {'1_0_7': CandidateSet('d', boxes, ['rc', 'rc', 'out']),
             '1_0_8': CandidateSet('d', torch.tensor([[20., 20., 60., 60.]]), ['rc']),
             '1_1_9': CandidateSet('d', torch.zeros(0, 4), []),
             '2_2_10': CandidateSet('d', torch.tensor([[5., 5., 15., 15.], [0., 0., 4., 4.]]), ['a', 'b'])}
    samples, st = build_selector_samples(recs, [lambda rec: table[rec['key']]], BoxListPromptSerializer())
    assert st['too_few_candidates'] == 2 and st['boxes_outside_image'] == 0
    assert [s['key'] for s in samples] == ['1_0_7'] * 3 + ['2_2_10'] * 2 and st['augmented_copies'] == 3
    first = [s for s in samples if s['key'] == '1_0_7']
    assert first[0]['candidates'][0].bboxes.tolist() == boxes.tolist()  # the original order first
    for s, seed in zip(first[1:], (2, 6)):
        order = list(range(3))
        random.seed(seed)  # the released code shuffles with the global RNG
        random.shuffle(order)
        assert s['candidates'][0].bboxes.tolist() == boxes[order].tolist()
        assert s['answer'] == str(order.index(1))  # the GT-matching box is candidate 1
        assert "'[0.0, 0.0, -10.0, -10.0]'" in s['prompt']  # printed as released, not dropped
    with pytest.raises(ValueError, match='num_shuffles'):
        build_selector_samples(recs, [lambda rec: table[rec['key']]], BoxListPromptSerializer(),
                               num_shuffles='many')


def test_synthetic_source_and_dataset(refer_root):
    src = SyntheticCandidateSource(num_distractors=(2, 2), category_names=['red circle',
                                                                            'blue square', 'x y'])
    recs = load_refer_records(str(refer_root), split='train')
    c = src(recs[0])
    assert len(c) == 5 and sorted(c.labels) == ['blue square', 'red circle', 'red circle', 'x y',
                                                'x y']
    assert torch.equal(c.bboxes, src(recs[0]).bboxes)  # deterministic per key
    assert not torch.equal(c.bboxes, src(recs[1]).bboxes)
    label, iou = best_candidate([c], recs[0]['gt_bbox'])
    assert iou > 0.7 and c.labels[label[1]] == 'red circle'
    ds = RECSelectorDataset(str(refer_root), [src], split='train', num_shuffles=2)
    assert len(ds) == 9 and ds.stats['augmented_copies'] == 6
    item = ds[0]
    meta = item['data_samples'].metainfo
    assert item['inputs'].startswith('You are a helpful AI assistant')
    assert meta['expression'] == 'the red circle on the left' and meta['answer'] is not None
    assert item['data_samples'].gt_instances.bboxes.tolist() == [[10., 10., 40., 40.]]
    assert len(RECSelectorDataset(str(refer_root), [src], split='val', test_mode=True)) == 1
