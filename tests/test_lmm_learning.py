"""It learns, smaller version (slow): the tiny LLaVA of configs/llava/llava_tiny_synthetic.py, trained on the
questions of 16 synthetic images, answers them far better than the text-only prior, and falls back to about the
prior when the images are replaced by noise (measured: 98% vs text-only prior 74% (52% constant per type),
noise images 48%, 110 steps, ~40 s).

The same question ("How many red shapes?") has different answers on different images, so beating the prior on
these images needs the image: a model whose visual tokens were ignored, misaligned with their samples or wrongly
expanded stays at the prior. Single-turn records: in multi-turn conversations the earlier answers alone identify a
memorised image (measured: train loss 0.001, single-turn accuracy = prior). Generalisation to unseen images is
the full run: benchmarks/lmm_learning.py, numbers in benchmarks/RESULTS.md.
"""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from llmvision.evaluation.vqa_metric import VQAAccuracyMetric
from llmvision.registry import DATASETS, MODELS

STEPS = 110
NUM_IMAGES = 16
TYPES = ('exist', 'colour', 'count', 'relation')


def _evaluate(model, dataset, train_ann):
    metric = VQAAccuracyMetric(train_ann_file=train_ann)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(dataset), 64):
            batch = pseudo_collate([dataset[i] for i in range(start, min(len(dataset), start + 64))])
            metric.process(None, [s.to_dict() for s in model(**model.data_preprocessor(batch, False),
                                                                 mode='predict')])
    return metric.compute_metrics(metric.results)


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and on a shared machine 2 spin-waiting threads were ~10x
    slower per step."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_tiny_llava_uses_the_image(synthetic_data, tmp_path, one_thread):
    records = [r for r in json.loads(synthetic_data.vqa_train.read_text()) if r['question_type'] in TYPES]
    images = sorted({r['image'] for r in records})[:NUM_IMAGES]
    (tmp_path / 'single.json').write_text(json.dumps([r for r in records if r['image'] in images]))
    cfg = Config.fromfile('configs/llava/llava_tiny_synthetic.py')
    tok = str(synthetic_data.llm_tokenizer)
    cfg.model.tokenizer = tok
    # no pre-trained tower here: a random one, trained (16 images are memorised through it)
    cfg.model.vision_encoder.checkpoint = None
    cfg.model.freeze_vision = False
    datasets = {}
    for name, ann, test_mode in (('train', 'single.json', False), ('test', 'single.json', True)):
        d = dict(cfg.val_dataloader.dataset, data_root=str(tmp_path), ann_file=ann, test_mode=test_mode,
                 data_prefix=dict(img=str(synthetic_data.image_dir)))
        d['encoder'] = dict(d['encoder'], tokenizer=tok)
        datasets[name] = DATASETS.build(d)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    train = datasets['train']
    batch = pseudo_collate([train[i] for i in range(len(train))])  # every question every step
    model.train()
    for _ in range(STEPS):
        loss = model(**model.data_preprocessor(batch, True), mode='loss')['loss']
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        warm.step()
    prior_file = str(tmp_path / 'single.json')
    m = _evaluate(model, datasets['test'], prior_file)
    # prior: the most frequent answer to the same question text (unique questions: their own answer)
    assert m['overall'] >= m['prior/overall'] + 15, m
    easiest = max(TYPES, key=lambda t: m.get(t, 0) - m.get(f'prior/{t}', 0))
    assert m[easiest] >= m[f'prior/{easiest}'] + 20, m
    cfg_noise = dict(cfg.val_dataloader.dataset, data_root=str(tmp_path), ann_file='single.json',
                     data_prefix=dict(img=str(synthetic_data.image_dir)), image_ablation='noise')
    cfg_noise['encoder'] = dict(cfg_noise['encoder'], tokenizer=tok)
    noise = _evaluate(model, DATASETS.build(cfg_noise), prior_file)
    assert noise['overall'] <= m['overall'] - 25, (noise, m)
