"""tools/print_config.py, tools/analyze_logs.py, tools/browse_dataset.py: each run writes a file
that the test opens and checks."""
import importlib.util
import json
import pathlib

import cv2
import numpy as np
import pytest
from mmengine.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'


def tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_print_config_applies_options_and_writes_a_loadable_config(tmp_path, capsys):
    out = tmp_path / 'resolved.py'
    tool('print_config').main([CONFIG, '--cfg-options', 'model.num_queries=7', 'train_dataloader.batch_size=3',
                               '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'num_queries=7' in printed.replace(' ', '')
    cfg = Config.fromfile(str(out))
    assert cfg.model.num_queries == 7 and cfg.train_dataloader.batch_size == 3
    assert cfg.model.type == 'llmvision.models.detectors.GroundingDINO'


def write_log(path):
    """The mmengine vis_data/scalars.json layout: training lines every 10 iters, validation lines."""
    lines = []
    for it in range(10, 110, 10):
        lines.append(dict(lr=1e-4, data_time=0.01, loss=5.0 / (it / 10), time=2.0 if it == 10 else 0.5 + it / 1000,
                          iter=it, step=it))
        if it % 50 == 0:
            lines.append({'lvis_fixed_ap/AP50': it / 200, 'data_time': 0.02, 'time': 0.3, 'step': it})
    path.write_text('\n'.join(json.dumps(r) for r in lines) + '\n')
    return str(path)


def test_plot_curve_draws_each_key(tmp_path):
    analyze = tool('analyze_logs')
    log = write_log(tmp_path / 'scalars.json')
    x, y = analyze.series(analyze.load_log(log), 'lvis_fixed_ap/AP50')
    assert x.tolist() == [50, 100] and y.tolist() == [0.25, 0.5]
    out = tmp_path / 'curve.png'
    analyze.main(['plot_curve', log, '--keys', 'loss', 'lvis_fixed_ap/AP50', '--out', str(out)])
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] == 600 and img.shape[1] == 800  # two 8x3 in subplots, 100 dpi
    assert (img < 200).any(axis=2).mean() > 0.01  # curves and axes drawn, not a blank page
    with pytest.raises(KeyError, match='no log has the key'):
        analyze.main(['plot_curve', log, '--keys', 'coco/bbox_mAP', '--out', str(tmp_path / 'x.png')])


def test_cal_train_time_skips_the_first_interval(tmp_path, capsys):
    analyze = tool('analyze_logs')
    log = write_log(tmp_path / 'scalars.json')
    stats = analyze.train_time(analyze.load_log(log))
    expected = np.mean([0.5 + it / 1000 for it in range(20, 110, 10)])
    assert stats['num'] == 9 and stats['mean'] == pytest.approx(expected)
    assert stats['slowest'] == 100 and stats['fastest'] == 20
    assert analyze.train_time(analyze.load_log(log), include_outliers=True)['slowest'] == 10
    analyze.main(['cal_train_time', log])
    assert f'{expected:.4f} s/iter' in capsys.readouterr().out


def test_browse_dataset_draws_transformed_samples(synthetic_data, tmp_path):
    out = tmp_path / 'browse'
    tool('browse_dataset').main([CONFIG, '--out-dir', str(out), '--num', '2', '--cfg-options',
                                 f'train_dataloader.dataset.data_root={synthetic_data.root}/'])
    files = sorted(out.glob('*.png'))
    assert len(files) == 2 and files[0].name.startswith('0000_')
    img = cv2.imread(str(files[0]))
    # the training pipeline resizes the 256x320 image to a short side of 160 / 176 / 192
    assert min(img.shape[:2]) in (160, 176, 192)
    # boxes are drawn in palette colours: saturated pixels that a plain resize would not give
    from llmvision.visualization import PALETTE
    colours = {tuple(int(v) for v in c[::-1]) for c in PALETTE}
    drawn = sum(int(np.all(img == np.array(c), axis=2).sum()) for c in colours)
    assert drawn > 50


def test_browse_dataset_names_each_box():
    names = tool('browse_dataset').box_names
    assert names(dict(text=['cat', 'dog']), [1, 0]) == ['dog', 'cat']
    assert names(dict(text='a red circle and a cat', tokens_positive=[[[2, 12]], [[19, 22]]]), [1, 0]) == \
        ['cat', 'red circle']
    assert names(dict(text='x', phrases=['the cat']), [0, 3]) == ['the cat', 'label 3']
