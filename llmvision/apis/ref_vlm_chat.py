"""Ask a REF-VLM model about an image and get its answer with the decoded boxes / keypoints in image pixels.

    model = init_lmm('configs/ref_vlm/ref_vlm_tiny_synthetic.py', 'work_dirs/ref_vlm_learning/iter_500.pth')
    answer, triplets = ref_vlm_chat(model, 'img.png', 'Where is the red circle?')

``triplets``: ``[{'phrase', 'unit', 'bboxes' [n, 4] pixel xyxy, 'keypoints'? [n, K, 3]}]`` (REFVLMModel.predict).
"""
from typing import Dict, List, Tuple

import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from .chat import build_chat_sample


@torch.no_grad()
def ref_vlm_chat(model, image_path: str, question: str) -> Tuple[str, List[Dict]]:
    """One question about the image at ``image_path`` -> ``(answer text, pred_triplets)``."""
    packed = build_chat_sample(model, image_path, question)
    with Image.open(image_path) as im:
        w, h = im.size
    packed['data_samples'].set_metainfo(dict(ori_shape=(h, w)))
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    sample = model.predict(data['inputs'], data['data_samples'])[0]
    return sample.pred_text, sample.pred_triplets
