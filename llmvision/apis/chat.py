"""One call from an image and a question to an answer with a LLaVA-style model.

    model = init_lmm('configs/llava/llava_tiny_synthetic.py', 'work_dirs/llava_tiny/iter_3000.pth')
    chat(model, 'img.png', 'What colour is the circle?')   # -> 'red'

The question goes through the config's test-set conversation encoder (chat template, ``<image>`` placeholder)
and the image through the test set's square-image step (``image_size``, ``image_aspect``, ``pad_value``), so
an answer here is the answer ``tools/test.py`` would get for the same record. Used by
``tools/image_demo.py --mode chat`` and the tests.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from llmvision.datasets.transforms.pack_lmm import PackLMMInputs
from llmvision.datasets.transforms.square_images import CLIP_MEAN_RGB, LoadSquareImages, square_image
from llmvision.registry import MODELS
from llmvision.utils.config import load_config
from llmvision.utils.hf_builder import build_object

ImageLike = Union[str, np.ndarray, Image.Image, None]


def init_lmm(config: str, weights: Optional[str] = None, device: str = 'cpu', cfg_options: Optional[dict] = None,
             strict: bool = True, src_format: str = 'auto'):
    """Build the config's multimodal LLM, load ``weights`` (ours, ``llava-hf`` or original LLaVA keys, converted
    on the fly) and set eval mode.

    ``strict`` (default) raises a ``KeyError`` with the key report when the weights do not match the model.
    The model carries ``cfg`` and ``conversation_encoder`` (the test set's) for :func:`chat`.
    """
    from llmvision.checkpoint.llava_load import load_llava_checkpoint
    cfg = load_config(config, cfg_options)
    model = MODELS.build(cfg.model)
    if weights is not None:
        load_llava_checkpoint(model, weights, src_format=src_format, strict=strict)
    model.cfg = cfg
    model.conversation_encoder = build_object(_test_dataset_cfg(cfg)['encoder'])
    return model.to(device).eval()


def _test_dataset_cfg(cfg) -> dict:
    """The dataset config whose conversation encoder and image settings chat uses: the test set's, else the
    validation or training set's (the LLaVA-1.5 recipes define only a training set)."""
    for name in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(name) or {}).get('dataset')
        if dataset and 'encoder' in dataset:
            return dataset
    raise KeyError('the config has no dataloader whose dataset has an "encoder" (the conversation encoder that '
                   'sets the chat template); chat needs a LLaVAJsonDataset-style dataset in the config')


def _image_step(cfg) -> LoadSquareImages:
    ds = _test_dataset_cfg(cfg)
    return LoadSquareImages(ds.get('image_size', 336), ds.get('image_aspect', 'pad'),
                            ds.get('pad_value', CLIP_MEAN_RGB))


def _load_images(step: LoadSquareImages, image: ImageLike) -> torch.Tensor:
    """uint8 ``[N, 3, S, S]`` (N = 0 without an image). Paths go through the dataset's own loader; arrays are
    RGB ``[H, W, 3]`` uint8."""
    if image is None:
        return torch.zeros((0, 3, step.size, step.size), dtype=torch.uint8)
    if isinstance(image, str):
        return step.transform(dict(img_paths=[image], sample_id='chat'))['imgs']
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'image array must be RGB uint8 [H, W, 3], got {image.dtype} {image.shape}')
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f'image must be a path, an RGB uint8 array, a PIL image or None, got {type(image).__name__}')
    array = square_image(image.convert('RGB'), step.size, step.aspect, step.pad_value)
    return torch.tensor(array).permute(2, 0, 1)[None].contiguous()


def build_chat_sample(model, image: ImageLike, question: str, history: Sequence[Dict] = ()) -> dict:
    """``dict(inputs=uint8 [N, 3, S, S], data_samples=LMMDataSample)`` of one question (test mode).

    ``history``: earlier turns (``[{'from': 'human'|'gpt', 'value': ...}]``). The image placeholder goes in
    front of the question of the first user turn unless the text already has one.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError('empty question')
    encoder = model.conversation_encoder
    turns = [dict(t) for t in history] + [{'from': 'human', 'value': question.strip()}]
    if image is not None and not any(encoder.image_token in t['value'] for t in turns):
        turns[0]['value'] = f'{encoder.image_token}\n{turns[0]["value"]}'
    enc = encoder.encode(turns, test_mode=True)
    imgs = _load_images(_image_step(model.cfg), image)
    if enc.num_images != imgs.shape[0]:
        raise ValueError(f'{enc.num_images} {encoder.image_token} placeholders in the conversation but '
                         f'{imgs.shape[0]} image(s) given')
    path = image if isinstance(image, str) else '<array>'
    return PackLMMInputs().transform(dict(
        imgs=imgs, input_ids=enc.input_ids, labels=enc.labels, sample_id='chat',
        img_paths=[path] if image is not None else [], question_type=None, gt_answer=None, truncated=enc.truncated))


@torch.no_grad()
def chat(model, image: ImageLike, question: str, history: Sequence[Dict] = (), **generation) -> str:
    """Answer ``question`` about ``image`` (a path, an RGB uint8 array, a PIL image or ``None``).

    ``generation``: overrides of the model's settings (``max_new_tokens``, ``num_beams``, ``length_penalty``,
    ``stop_strings``). Returns the answer text (``pred_text`` of the model's ``predict``).
    """
    return chat_batch(model, [image], [question], [history], **generation)[0]


@torch.no_grad()
def chat_batch(model, images: Sequence[ImageLike], questions: Sequence[str],
               histories: Optional[Sequence[Sequence[Dict]]] = None, **generation) -> List[str]:
    """:func:`chat` for several (image, question) pairs in one batch."""
    if len(images) != len(questions):
        raise ValueError(f'{len(images)} images for {len(questions)} questions')
    histories = histories or [()] * len(questions)
    packed = [build_chat_sample(model, im, q, h) for im, q, h in zip(images, questions, histories)]
    data = model.data_preprocessor(pseudo_collate(packed), False)
    samples = model.predict(data['inputs'], data['data_samples'], **generation)
    return [s.pred_text for s in samples]
