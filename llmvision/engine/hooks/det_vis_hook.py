"""``tools/test.py --show-dir``: draw each test image's predictions into a folder."""
import os
import os.path as osp

import cv2
from mmengine.hooks import Hook

from llmvision.registry import HOOKS
from llmvision.visualization.draw import draw_detections


def sample_label_names(sample, labels) -> list:
    """Names of predicted labels: category names for list prompts, phrases for captions."""
    text = sample.metainfo.get('text')
    entities = sample.metainfo.get('entities')
    if isinstance(text, (list, tuple)):
        names = list(text)
    elif entities:
        names = list(entities)
    else:
        names = None
    return [names[i] if names is not None and 0 <= i < len(names) else str(i) for i in labels]


@HOOKS.register_module()
class DetVisualizationHook(Hook):
    """After each test iteration, write ``<work_dir>/<test_out_dir>/<image name>`` with boxes drawn.

    Args:
        test_out_dir: folder (relative to the work dir unless absolute).
        score_thr: boxes under this score are not drawn.
        max_images: stop drawing after this many images (None: all).
    """

    def __init__(self, test_out_dir: str, score_thr: float = 0.3, max_images: int = None):
        self.test_out_dir = test_out_dir
        self.score_thr = score_thr
        self.max_images = max_images
        self._count = 0

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        out_dir = self.test_out_dir if osp.isabs(self.test_out_dir) else \
            osp.join(runner.work_dir, self.test_out_dir)
        os.makedirs(out_dir, exist_ok=True)
        for sample in outputs or []:
            if self.max_images is not None and self._count >= self.max_images:
                return
            img_path = sample.metainfo['img_path']
            image = cv2.imread(img_path, cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f'--show-dir: cannot read {img_path}')
            pred = sample.pred_instances
            keep = pred.scores >= self.score_thr
            labels = pred.labels[keep].tolist()
            drawn = draw_detections(image[..., ::-1], pred.bboxes[keep].cpu().numpy(),
                                    sample_label_names(sample, labels), pred.scores[keep].tolist())
            name = f'{self._count:05d}_{osp.basename(img_path)}'
            cv2.imwrite(osp.join(out_dir, name), drawn[..., ::-1])
            self._count += 1
