"""One call from an image and text to boxes: open-vocabulary detection, phrase grounding, REC.

    model = init_detector('configs/grounding_dino/grounding_dino_tiny_synthetic.py', 'ckpt.pth')
    [sample] = inference_detector(model, 'img.png', 'red circle . blue square .')
    sample.pred_instances.bboxes  # [K, 4] pixel xyxy in the original image

Used by ``tools/image_demo.py`` and the tests.
"""
import re
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log

from llmvision.datasets.transforms import LoadAnnotations, LoadImageFromFile
from llmvision.registry import MODELS
from llmvision.utils.compat import check_checkpoint_file
from llmvision.utils.config import load_config
from llmvision.utils.noun_phrases import NLTK_HELP, nltk_available, noun_phrases, phrase_spans

MODES = ('detection', 'grounding', 'rec')


def check_device(device: str) -> torch.device:
    """``'cpu'``, ``'cuda'`` or ``'cuda:N'`` as a ``torch.device``; a one-line ``ValueError`` for a
    name torch does not know or a GPU this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f'--device {device!r}: not a device name (use cpu, cuda or cuda:N)') from None
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'--device {device!r}: no CUDA GPU is available here '
                             f'(torch {torch.__version__}); use --device cpu')
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f'--device {device!r}: this machine has {torch.cuda.device_count()} GPU(s) '
                             f'(cuda:0..cuda:{torch.cuda.device_count() - 1})')
    return dev


def init_detector(config: str, weights: Optional[str] = None, device: str = 'cpu',
                  cfg_options: Optional[dict] = None, strict: bool = True):
    """Build the config's model, load ``weights`` (ours, HF or mmdet format) and set eval mode.

    The device and the weights file are checked before the model is built (one-line errors).
    ``strict`` (default) raises a ``KeyError`` with the full key report when the weights do not
    match the config's model.
    """
    from llmvision.checkpoint import load_grounding_dino_checkpoint
    device = check_device(device)
    if weights is not None:
        check_checkpoint_file(weights)
    cfg = load_config(config, cfg_options)
    model = MODELS.build(cfg.model)
    if weights is not None:
        load_grounding_dino_checkpoint(model, weights, strict=strict)
    model.cfg = cfg
    return model.to(device).eval()


def _type_name(step: dict) -> str:
    t = step['type']
    return t if isinstance(t, str) else t.__name__


def build_test_pipeline(cfg, from_array: bool = False) -> Compose:
    """The config's test pipeline without annotation loading (and image loading for arrays)."""
    steps = [dict(s) for s in cfg.test_dataloader.dataset.pipeline]
    drop = {LoadAnnotations.__name__} | ({LoadImageFromFile.__name__} if from_array else set())
    return Compose([s for s in steps if _type_name(s) not in drop])


def parse_category_prompt(text: Union[str, Sequence[str]]) -> List[str]:
    """``'apple . banana .'`` or ``['apple', 'banana']`` -> ``['apple', 'banana']``."""
    names = text.split('.') if isinstance(text, str) else list(text)
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise ValueError(f'empty text: no category names in {text!r}')
    return names


def make_prompt(text, mode: str = 'detection', entities: Optional[Sequence[str]] = None) -> dict:
    """Metainfo of a prompt: ``text``, ``custom_entities``, ``tokens_positive``, ``entities``, ``rec``.

    - ``'detection'``: a category list (``'a . b .'`` or a list).
    - ``'grounding'``: a caption whose entities are ``entities`` (substrings of it), or its nltk
      noun phrases when nltk data is installed.
    - ``'rec'``: a referring expression; the model returns its single best box.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if mode == 'detection':
        names = parse_category_prompt(text)
        return dict(text=names, custom_entities=True, tokens_positive=None, entities=names)
    if not isinstance(text, str) or not re.search(r'\w', text):
        raise ValueError(f'empty text for {mode} mode: no words in {text!r}')
    caption = text.strip()
    if mode == 'rec':
        return dict(text=caption, custom_entities=False, tokens_positive=None,
                    entities=[caption], rec=True)
    if not entities:
        if not nltk_available():
            raise LookupError(f'grounding needs the entities of the caption: pass them (--entities '
                              f'"a,b") or install nltk data. {NLTK_HELP}')
        entities = noun_phrases(caption)
        if not entities:
            raise ValueError(f'no noun phrases found in {caption!r}; pass the entities explicitly')
        print_log(f'grounding entities from nltk: {entities}', logger='current')
    entities = [e.strip() for e in entities]
    spans = phrase_spans(caption, entities)
    return dict(text=caption, custom_entities=False, tokens_positive=spans, entities=entities)


def _load_input(image, from_array: bool) -> dict:
    if from_array:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'image array must be [H, W, 3] BGR uint8, got shape {image.shape}')
        h, w = image.shape[:2]
        return dict(img=image, img_shape=(h, w), ori_shape=(h, w), img_path='<array>', img_id=0)
    return dict(img_path=str(image), img_id=0)


@torch.no_grad()
def inference_detector(model, images, text, mode: str = 'detection',
                       entities: Optional[Sequence[str]] = None, batch_size: int = 1):
    """Predict boxes for one image or a list (paths or BGR ``[H, W, 3]`` uint8 arrays).

    Returns one :class:`DetDataSample` per image with ``pred_instances`` (bboxes pixel xyxy in
    the original image, scores, labels indexing ``metainfo['entities']``).
    """
    single = not isinstance(images, (list, tuple))
    images = [images] if single else list(images)
    prompt = make_prompt(text, mode, entities)
    results = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        packed = []
        for image in chunk:
            from_array = isinstance(image, np.ndarray)
            data = _load_input(image, from_array)
            data.update(prompt)
            out = build_test_pipeline(model.cfg, from_array)(data)
            out['data_samples'].set_metainfo({k: v for k, v in prompt.items()})
            packed.append(out)
        results.extend(model.test_step(pseudo_collate(packed)))
    return results[0] if single else results
