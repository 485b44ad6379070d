"""Draw the transformed samples of a config's dataset (mmdet's browse_dataset): what the model sees.

    python tools/browse_dataset.py CONFIG --out-dir DIR [--phase train|val|test] [--num 20]
                                   [--cfg-options k=v ...]

Each sample goes through the config's pipeline (resize, flip, ...) and is written to
``DIR/<index>_<image name>.png`` with its gt boxes and their phrases (the category name, the
grounded phrase of a caption, or the sample's ``phrases``); the caption / prompt is printed.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.registry import DATASETS  # noqa: E402
from llmvision.utils.config import load_config  # noqa: E402
from llmvision.visualization import draw_detections  # noqa: E402


def box_names(metainfo: dict, labels) -> list:
    """The phrase of each gt label: ``phrases``, the category list, or the caption's entity spans."""
    if metainfo.get('phrases'):
        names = list(metainfo['phrases'])
    elif isinstance(metainfo.get('text'), (list, tuple)):
        names = list(metainfo['text'])
    else:
        text, spans = metainfo.get('text') or '', metainfo.get('tokens_positive') or []
        names = [' '.join(text[s:e] for s, e in entity) for entity in spans]
    return [names[i] if 0 <= i < len(names) else f'label {i}' for i in labels]


def draw_sample(item: dict):
    """``dict(inputs [3, H, W] uint8 BGR, data_samples)`` -> RGB ``[H, W, 3]`` with the gt boxes."""
    sample = item['data_samples']
    image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]
    gt = sample.gt_instances
    bboxes = gt.bboxes if 'bboxes' in gt else []
    labels = gt.labels.tolist() if 'labels' in gt else []
    return draw_detections(image, bboxes, box_names(sample.metainfo, labels), color_ids=labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Draw transformed dataset samples with their gt boxes')
    parser.add_argument('config')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--phase', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--num', type=int, default=20, help='samples to draw (from the start)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    loader = cfg.get(f'{args.phase}_dataloader')
    if not loader:
        parser.error(f'{args.config} has no {args.phase}_dataloader')
    dataset = DATASETS.build(loader['dataset'])
    os.makedirs(args.out_dir, exist_ok=True)
    for idx in range(min(args.num, len(dataset))):
        item = dataset[idx]
        meta = item['data_samples'].metainfo
        name = f'{idx:04d}_{osp.splitext(osp.basename(meta.get("img_path", "sample")))[0]}.png'
        path = osp.join(args.out_dir, name)
        if not cv2.imwrite(path, draw_sample(item)[..., ::-1]):
            raise OSError(f'cannot write {path}')
        print(f'{path}: {meta.get("text")!r}')


if __name__ == '__main__':
    main()
