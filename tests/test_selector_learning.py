"""The tiny REC selector recipe (issue 18): the compact prompt, the task subsets, the shuffled-candidate
augmentation of ``benchmarks/rec_selector_learning.py``, and (slow) a smaller version of its run: the fine-tuned
tiny selector beats detector-only by >= 15 points on unseen synthetic images."""
import importlib.util
import random
from pathlib import Path

import pytest
import torch

from llmvision.models.selectors.compact_serializer import CompactBoxPromptSerializer
from llmvision.models.selectors.serializer import SerializedPrompt
from llmvision.structures.candidates import CandidateSet

ROOT = Path(__file__).resolve().parent.parent
STEPS = 1500  # measured on the full set: 53.8% vs detector-only 30.2% on subset a, 143 s of training


def _bench():
    spec = importlib.util.spec_from_file_location('rec_selector_learning',
                                                  ROOT / 'benchmarks' / 'rec_selector_learning.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _block():
    # image 200 (H) x 100 (W)
    return CandidateSet('synthetic', torch.tensor([[0., 0., 10., 20.], [50., 100., 100., 200.],
                                                   [-5., 30., 40., 90.]]),
                        ['Red Star', 'blue  circle', 'red star'], torch.tensor([0.9, 0.5, 0.2]))


def test_compact_prompt_text_and_index_map():
    ser = CompactBoxPromptSerializer(image_size=(200, 100))
    p = ser.serialize([_block()], 'The  red star\non the left')
    assert isinstance(p, SerializedPrompt)
    # centre x, y in tenths; width, height in twentieths (clamped at 9)
    assert p.text.splitlines() == ['the red star on the left', '0022 red star 0', '7799 blue circle 1',
                                   '1396 red star 2']
    assert p.index_map == [(0, 0), (0, 1), (0, 2)] and p.lookup(2) == (0, 2)
    assert ser.chat_text(p.text) == p.text + '\nanswer'


def test_compact_prompt_formats_and_errors():
    ser = CompactBoxPromptSerializer(image_size=(200, 100), line_format='{coords} {label}={index}', index_start=1)
    p = ser.serialize([_block(), _block().subset([1])], 'x')
    assert p.text.splitlines()[1:] == ['0022 red star=1', '7799 blue circle=2', '1396 red star=3',
                                       '7799 blue circle=4']
    assert p.lookup(4) == (1, 0)
    with pytest.raises(ValueError):
        CompactBoxPromptSerializer(image_size=(0, 10))
    with pytest.raises(ValueError):
        CompactBoxPromptSerializer(image_size=(10, 10), line_format='{label} {coords}')
    with pytest.raises(ValueError):
        CompactBoxPromptSerializer(image_size=(10, 10), grid=20)


def _rec(expression, cats, target=0):
    return dict(expression=expression, category=cats[target], needs_reasoning=cats.count(cats[target]) > 1,
                image_anns=[dict(category=c) for c in cats])


def test_subsets():
    bench = _bench()
    unique = _rec('the red star', ['red star', 'blue circle'])
    left = _rec('the red star on the left', ['red star', 'red star', 'blue circle'])
    leftmost = _rec('the leftmost red star', ['red star', 'red star'])
    larger = _rec('the larger red star', ['red star', 'red star'])
    three = _rec('the leftmost red star', ['red star', 'red star', 'red star'])
    assert [bench.in_subset(r, 'a') for r in (unique, left, larger)] == [True, False, False]
    assert [bench.in_subset(r, 'b') for r in (unique, left, leftmost, larger, three)] == \
        [False, True, True, False, False]
    assert all(bench.in_subset(r, 'c') for r in (unique, left, larger, three))
    assert bench.in_any(left, 'a+b') and not bench.in_any(larger, 'a+b')
    assert bench.parse_stages('a@2:10,a+b:5') == [('a', 10, 2), ('a+b', 5, None)]
    with pytest.raises(ValueError):
        bench.parse_stages('d:3')


def test_shuffled_copy_remaps_the_answer():
    bench = _bench()
    ser = CompactBoxPromptSerializer(image_size=(200, 100), line_format='{coords} {label}={index}')
    block = _block()
    sample = dict(candidates=[block], label=(0, 1), expression='the blue circle')
    rng = random.Random(0)
    orders = set()
    for _ in range(20):
        text, answer = bench.shuffled(sample, ser, rng, echo=True)
        label, index = answer.split('=')
        assert label == 'blue circle'
        lines = text.splitlines()[1:]
        assert lines[int(index)].endswith(f'circle={index}')
        orders.add(tuple(line.split(' ', 1)[1] for line in lines))
        assert bench.shuffled(sample, ser, random.Random(1))[1].isdigit()
    assert len(orders) > 1
    for _ in range(10):
        text, answer = bench.shuffled(sample, ser, rng, echo=False, max_candidates=2)
        lines = text.splitlines()[1:]
        assert len(lines) == 2 and lines[int(answer)].endswith(f'circle={answer}')


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and on a shared machine spin-waiting threads are slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_tiny_selector_beats_detector_only(tmp_path_factory, one_thread):
    """Smaller version of ``benchmarks/rec_selector_learning.py --subset a``: the tiny recipe of
    configs/llm_wrapper/llm_wrapper_tiny_synthetic.py trained for STEPS steps (lr 3e-3: the short schedule
    decays it fast) on label matching beats the detector's top box by >= 15 points on unseen images (val + testA +
    testB of a 60-image val set)."""
    from llmvision.datasets.synthetic import make_synthetic_dataset
    root = tmp_path_factory.mktemp('rec_selector')
    make_synthetic_dataset(root, seed=0, num_train=600, num_val=60)
    bench = _bench()
    args = bench.parse_args(['--data', str(root), '--subset', 'a', '--steps', str(STEPS), '--lr', '3e-3',
                             '--probe-size', '0', '--train-probe', '64', '--log-interval', str(STEPS)])
    out = bench.run(args, log=lambda *a: None)
    acc = {r['method'].split(' ')[0]: r['accuracy'] for r in out['eval']}
    assert out['eval'][0]['total'] >= 100
    assert acc['oracle'] == 1.0
    assert acc['fine-tuned'] - acc['detector-only'] >= 0.15, acc
