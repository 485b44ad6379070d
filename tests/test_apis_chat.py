"""Chat API (``llmvision.apis.chat``) and ``tools/image_demo.py --mode chat`` on the tiny LLaVA config
(``configs/llava/llava_tiny_synthetic.py``, random weights, the session's synthetic set).

The answer of ``chat`` must be the one ``predict`` gives for the same record through the config's test set
(``LLaVAJsonDataset`` + ``test_step``), and the demo must print it and save it in ``OUT_DIR/preds/<name>.json``.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs/llava/llava_tiny_synthetic.py')


@pytest.fixture(scope='module')
def setup(synthetic_data, tmp_path_factory):
    """The tiny LLaVA config pointed at the session's synthetic set, a random-init checkpoint, the val records."""
    from llmvision.registry import MODELS
    from llmvision.utils.config import load_config
    tmp = tmp_path_factory.mktemp('chat')
    tok = str(synthetic_data.llm_tokenizer)
    opts = {'model.tokenizer': tok, 'model.max_new_tokens': 6,
            'model.vision_encoder.checkpoint': None,  # a random tower (no stage-0 run in tests)
            'test_dataloader.dataset.encoder.tokenizer': tok,
            'test_dataloader.dataset.data_root': str(synthetic_data.root) + '/'}
    cfg = load_config(CONFIG, opts)
    model = MODELS.build(cfg.model)
    torch.manual_seed(0)
    with torch.no_grad():  # a projector with some weight so the image changes the answer
        for p in model.projector.parameters():
            p.normal_(0, 0.5)
    ckpt = tmp / 'tiny_llava.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init')), ckpt)
    records = json.loads(synthetic_data.vqa_val.read_text())
    return dict(opts=opts, ckpt=ckpt, cfg=cfg, records=records, data=synthetic_data, tmp=tmp)


def predict_answers(model, cfg, n):
    """``pred_text`` of the first ``n`` test records through the dataset and ``test_step``."""
    from mmengine.dataset import pseudo_collate

    from llmvision.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    samples = model.test_step(pseudo_collate([dataset[i] for i in range(n)]))
    return [s.pred_text for s in samples]


def test_chat_matches_predict(setup):
    from llmvision.apis.chat import chat, chat_batch, init_lmm
    model = init_lmm(CONFIG, str(setup['ckpt']), cfg_options=setup['opts'])
    expected = predict_answers(model, setup['cfg'], 2)
    img_dir = setup['data'].root / 'images'
    recs = setup['records'][:2]
    questions = [r['conversations'][0]['value'].replace('<image>\n', '') for r in recs]
    images = [str(img_dir / r['image']) for r in recs]
    assert chat(model, images[0], questions[0]) == expected[0]
    assert chat_batch(model, images, questions) == expected
    # an RGB array and a PIL image give the path's answer; no image -> a text-only prompt
    rgb = np.asarray(Image.open(images[0]).convert('RGB'))
    assert chat(model, rgb, questions[0]) == chat(model, Image.fromarray(rgb), questions[0]) == expected[0]
    assert isinstance(chat(model, None, questions[0]), str)
    with pytest.raises(ValueError, match='empty question'):
        chat(model, images[0], '  ')


def test_init_lmm_strict_weights(setup, tmp_path):
    from llmvision.apis.chat import init_lmm
    sd = torch.load(setup['ckpt'], weights_only=True)['state_dict']
    sd.pop('projector.linear_2.bias')
    torch.save(dict(state_dict=sd), tmp_path / 'partial.pth')
    with pytest.raises(KeyError, match='projector.linear_2.bias'):
        init_lmm(CONFIG, str(tmp_path / 'partial.pth'), cfg_options=setup['opts'])


def test_image_demo_chat_mode(setup, tmp_path):
    from llmvision.apis.chat import init_lmm
    rec = setup['records'][0]
    image = str(setup['data'].root / 'images' / rec['image'])
    question = rec['conversations'][0]['value'].replace('<image>\n', '')
    expected = predict_answers(init_lmm(CONFIG, str(setup['ckpt']), cfg_options=setup['opts']), setup['cfg'], 1)[0]
    out = tmp_path / 'out'
    opts = [f'{k}={v}' for k, v in setup['opts'].items()]
    cmd = [sys.executable, os.path.join(ROOT, 'tools/image_demo.py'), image, CONFIG, '--weights', str(setup['ckpt']),
           '--mode', 'chat', '--out-dir', str(out), '--cfg-options', *opts, '--text', question]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / 'preds' / (os.path.splitext(rec['image'])[0] + '.json')).read_text())
    assert record['answer'] == expected and record['question'] == question and record['mode'] == 'chat'
    assert f'answer: {expected}' in proc.stdout
    bad = subprocess.run(cmd[:-1] + [' '], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().startswith('error:')
