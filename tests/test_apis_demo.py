"""Inference API and tools/image_demo.py: each mode on a real photo with a tiny random model,
and bad input -> one-line error, exit status 1."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs/grounding_dino/grounding_dino_tiny_synthetic.py')


@pytest.fixture(scope='module')
def demo_setup(synthetic_data, tmp_path_factory):
    """A real photo (scikit-image), and a checkpoint of the tiny synthetic model (random init)."""
    from skimage import data

    from llmvision.engine import load_config
    from llmvision.registry import MODELS
    tmp = tmp_path_factory.mktemp('demo')
    photo = tmp / 'astronaut.png'
    cv2.imwrite(str(photo), cv2.resize(data.astronaut(), (160, 160))[..., ::-1])
    opts = {'model.text_encoder.tokenizer': str(synthetic_data.bert_tokenizer)}
    cfg = load_config(CONFIG, opts)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = tmp / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random init')), ckpt)
    return dict(photo=photo, ckpt=ckpt, opts=opts, tmp=tmp, data=synthetic_data)


def test_inference_modes_on_real_photo(demo_setup):
    from llmvision.apis import inference_detector, init_detector
    model = init_detector(CONFIG, str(demo_setup['ckpt']), cfg_options=demo_setup['opts'])
    photo = str(demo_setup['photo'])
    det = inference_detector(model, photo, 'red circle . blue square .')
    assert det.metainfo['entities'] == ['red circle', 'blue square']
    pred = det.pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores) > 0
    assert set(pred.labels.tolist()) <= {0, 1}
    assert (pred.bboxes[:, 2] <= 160 + 1e-3).all() and (pred.bboxes >= -1e-3).all()  # original pixels
    grd = inference_detector(model, photo, 'a red circle next to a blue square',
                             mode='grounding', entities=['red circle', 'blue square'])
    assert grd.metainfo['tokens_positive'] == [[(2, 12)], [(23, 34)]]
    rec = inference_detector(model, photo, 'the red circle on the left', mode='rec')
    assert len(rec.pred_instances) == 1
    # an array input gives the same answer as the file
    arr = cv2.imread(photo)
    same = inference_detector(model, arr, 'red circle . blue square .')
    assert torch.allclose(same.pred_instances.bboxes, det.pred_instances.bboxes, atol=1e-4)


def _demo(args, **kwargs):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools/image_demo.py'), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, **kwargs)


def test_demo_writes_image_and_json_for_a_folder(demo_setup, tmp_path):
    src = tmp_path / 'imgs'
    src.mkdir()
    img_dir = demo_setup['data'].image_dir
    for name in ('val_000000.png', 'val_000001.png'):
        (src / name).write_bytes((img_dir / name).read_bytes())
    out = tmp_path / 'out'
    res = _demo([str(src), CONFIG, '--weights', str(demo_setup['ckpt']), '--text',
                 'red circle . purple triangle .', '--out-dir', str(out), '--pred-score-thr', '0.0',
                 '--cfg-options', f"model.text_encoder.tokenizer={demo_setup['data'].bert_tokenizer}"])
    assert res.returncode == 0, res.stderr[-2000:]
    for stem in ('val_000000', 'val_000001'):
        vis = cv2.imread(str(out / 'vis' / f'{stem}.png'))
        orig = cv2.imread(str(src / f'{stem}.png'))
        assert vis is not None and vis.shape == orig.shape
        assert np.abs(vis.astype(int) - orig.astype(int)).sum() > 0  # boxes were drawn
        rec = json.loads((out / 'preds' / f'{stem}.json').read_text())
        assert rec['entities'] == ['red circle', 'purple triangle']
        assert len(rec['bboxes']) == len(rec['scores']) == len(rec['labels'])


@pytest.mark.parametrize('case', ['missing_image', 'corrupt_image', 'empty_text', 'wrong_weights'])
def test_demo_bad_input_one_line_error(demo_setup, tmp_path, case):
    image, text, weights = str(demo_setup['photo']), 'red circle .', str(demo_setup['ckpt'])
    if case == 'missing_image':
        image = str(tmp_path / 'nope.png')
    elif case == 'corrupt_image':
        image = str(tmp_path / 'broken.png')
        (tmp_path / 'broken.png').write_bytes(b'\x89PNG not really')
    elif case == 'empty_text':
        text = '   '
    else:
        sd = torch.load(weights, weights_only=True)['state_dict']
        sd = {k.replace('decoder.layers.1.', 'decoder.layers.9.'): v for k, v in sd.items()}
        weights = str(tmp_path / 'wrong.pth')
        torch.save(dict(state_dict=sd), weights)
    res = _demo([image, CONFIG, '--weights', weights, '--text', text, '--out-dir', str(tmp_path / 'o'),
                 '--cfg-options', f"model.text_encoder.tokenizer={demo_setup['data'].bert_tokenizer}"])
    assert res.returncode == 1
    err = [ln for ln in res.stderr.splitlines() if ln.startswith('error:')]
    assert len(err) == 1, res.stderr[-2000:]
    expect = {'missing_image': 'nope.png', 'corrupt_image': 'broken.png', 'empty_text': 'empty',
              'wrong_weights': 'decoder.layers'}[case]
    assert expect in err[0]
