"""Image and annotation loading transforms (mmdet 3.x result keys).

``LoadImageFromFile`` sets ``img`` (uint8 ``[H, W, 3]`` BGR, as mmcv decodes), ``img_shape`` and
``ori_shape`` (``(H, W)``). A missing, unreadable or corrupt image raises
:class:`~llmvision.datasets.bad_samples.BadSampleError` naming the file (datasets turn it into a
counted skip with ``on_bad_sample='skip'``). ``LoadAnnotations`` turns ``instances`` into
``gt_bboxes`` float32 ``[N, 4]`` pixel xyxy, ``gt_bboxes_labels`` int64 ``[N]`` and
``gt_ignore_flags`` bool ``[N]``.
"""
import os.path as osp

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from ...registry import TRANSFORMS
from ..bad_samples import BadSampleError


@TRANSFORMS.register_module()
class LoadImageFromFile(BaseTransform):
    """Read ``results['img_path']`` into ``results['img']``.

    Args:
        color_type: mmcv color type (``'color'``: 3-channel BGR).
        imdecode_backend: mmcv decode backend (``'cv2'`` or ``'pillow'``).
        check_size: when the data info carries ``height``/``width``, require the decoded image
            to match them (annotation boxes are in that frame).
    """

    def __init__(self, color_type: str = 'color', imdecode_backend: str = 'cv2', check_size: bool = True):
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.check_size = check_size

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        if not osp.isfile(path) and '://' not in path:
            raise BadSampleError('image file not found', source=path)
        try:
            img_bytes = get(path)
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:  # noqa: BLE001  (any decoder failure = corrupt file)
            raise BadSampleError(f'cannot read image: {type(e).__name__}: {e}', source=path) from None
        if img is None or img.size == 0:
            raise BadSampleError('corrupt or empty image (decoder returned nothing)', source=path)
        h, w = img.shape[:2]
        if self.check_size and 'height' in results and 'width' in results:
            if (int(results['height']), int(results['width'])) != (h, w):
                raise BadSampleError(
                    f'decoded image is {h}x{w} (HxW) but the annotation says '
                    f"{results['height']}x{results['width']}", source=path)
        results['img'] = img
        results['img_shape'] = (h, w)
        results['ori_shape'] = (h, w)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(color_type={self.color_type!r}, backend={self.imdecode_backend!r})'


@TRANSFORMS.register_module()
class LoadAnnotations(BaseTransform):
    """``results['instances']`` -> ``gt_bboxes`` ``[N, 4]``, ``gt_bboxes_labels`` ``[N]``,
    ``gt_ignore_flags`` ``[N]``."""

    def __init__(self, with_bbox: bool = True, with_label: bool = True):
        self.with_bbox = with_bbox
        self.with_label = with_label

    def transform(self, results: dict) -> dict:
        instances = results.get('instances', [])
        if self.with_bbox:
            boxes = [inst['bbox'] for inst in instances]
            results['gt_bboxes'] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            results['gt_ignore_flags'] = np.asarray([bool(inst.get('ignore_flag', 0)) for inst in instances],
                                                    dtype=bool).reshape(-1)
        if self.with_label:
            results['gt_bboxes_labels'] = np.asarray([inst['bbox_label'] for inst in instances],
                                                     dtype=np.int64).reshape(-1)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(with_bbox={self.with_bbox}, with_label={self.with_label})'
