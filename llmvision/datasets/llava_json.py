"""LLaVA conversation json dataset for the multimodal LLMs (LLaVA, VLoRA, LLaVolta, REF-VLM).

File: ``[{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt",
"value": "..."}, ...]}, ...]``. ``image`` is a path relative to ``data_prefix['img']``, a list of paths
(several images, one ``<image>`` each, in order) or absent (text-only). An optional ``question_type`` is kept
for per-type metrics.

Per sample (after the default pipeline :class:`LoadSquareImages` -> :class:`PackLMMInputs`):
``dict(inputs=Tensor uint8 [N_img, 3, S, S], data_samples=LMMDataSample)`` with ``input_ids`` / ``labels``
from the injected conversation encoder (``encoder=dict(type=ConversationEncoder, tokenizer=..., template=...)``,
built with :func:`llmvision.utils.hf_builder.build_object`; this module never imports ``llmvision.models``).
In test mode ``input_ids`` is the prompt ending with the generation prompt and ``gt_answer`` the last answer.

Bad records (``<image>`` count != images, missing image file, roles not alternating, empty answer, malformed
record) raise :class:`BadSampleError` naming the file, the record index and its id; with
``on_bad_sample='skip'`` they are logged and counted (``dataset.num_skipped``) instead. Conversations longer
than the encoder's ``max_length`` are cut (train) and counted in ``dataset.num_truncated`` (logged).
"""
import json
import logging
import os.path as osp
from typing import Optional, Sequence

from mmengine.logging import print_log

from ..registry import DATASETS
from ..utils.hf_builder import build_object
from .bad_samples import BadSampleError
from .base import GroundingBaseDataset
from .transforms.pack_lmm import PackLMMInputs
from .transforms.square_images import CLIP_MEAN_RGB, LoadSquareImages


@DATASETS.register_module()
class LLaVAJsonDataset(GroundingBaseDataset):
    """LLaVA conversation json (see the module docstring).

    Args:
        ann_file: the json file (joined with ``data_root``).
        encoder: conversation encoder object or ``dict(type=ConversationEncoder, ...)`` (needs ``encode``,
            ``to_messages`` and ``image_token``).
        image_size: square side ``S`` of every image.
        image_aspect: ``'pad'`` (to a square with ``pad_value``, LLaVA-1.5) or ``'resize'``.
        pad_value: RGB padding colour (CLIP mean colour by default).
        image_ablation: ``None``, ``'noise'`` or ``'blank'``: replace every image (the image-matters check).
        question_types: keep only records of these ``question_type`` values (``None``: all).
        check_images: check at load time that every image file exists.
        pipeline: ``None`` = the default ``[LoadSquareImages, PackLMMInputs]``.
        **kwargs: :class:`GroundingBaseDataset` arguments (data_root, data_prefix=dict(img=...), test_mode,
            on_bad_sample, max_bad_samples, indices, ...).
    """

    METAINFO = dict(dataset_name='llava_json')

    def __init__(self, ann_file: str, encoder, image_size: int = 336, image_aspect: str = 'pad',
                 pad_value: Sequence[int] = CLIP_MEAN_RGB, image_ablation: Optional[str] = None,
                 question_types: Optional[Sequence[str]] = None, check_images: bool = True,
                 pipeline=None, **kwargs):
        self.encoder = build_object(encoder)
        self.question_types = None if question_types is None else set(question_types)
        self.check_images = check_images
        self.num_truncated = 0
        if pipeline is None:
            pipeline = [LoadSquareImages(image_size, image_aspect, pad_value, replace_with=image_ablation),
                        PackLMMInputs()]
        super().__init__(ann_file=ann_file, pipeline=pipeline, **kwargs)

    # ------------------------------------------------------------------ parsing
    def _check_record(self, rec, idx: int) -> dict:
        """Validate one record and return its data info (raises BadSampleError naming the record)."""
        where = f'record {idx}' + (f' (id {rec.get("id")!r})' if isinstance(rec, dict) and 'id' in rec else '')
        try:
            if not isinstance(rec, dict):
                raise ValueError(f'a record must be a json object, got {type(rec).__name__}')
            convs = rec.get('conversations')
            if not isinstance(convs, list) or not convs:
                raise ValueError('"conversations" must be a non-empty list')
            msgs = self.encoder.to_messages(convs)
            if msgs[-1]['role'] != 'assistant':
                raise ValueError('the conversation must end with an answer (gpt turn)')
            images = rec.get('image')
            images = [] if images is None else [images] if isinstance(images, str) else images
            if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
                raise ValueError(f'"image" must be a path or a list of paths, got {rec.get("image")!r}')
            placeholders = sum(m['content'].count(self.encoder.image_token) for m in msgs)
            if placeholders != len(images):
                raise ValueError(f'{placeholders} {self.encoder.image_token} placeholders but {len(images)} '
                                 'images')
            paths = [osp.join(self.img_prefix, p) for p in images]
            for p in paths:
                if self.check_images and not osp.isfile(p):
                    raise ValueError(f'image file {p!r} not found')
        except ValueError as e:
            raise BadSampleError(f'{where}: {e}', source=self.ann_file) from None
        users = [m['content'] for m in msgs if m['role'] == 'user']
        question = users[-1].replace(self.encoder.image_token, ' ').strip() if users else ''
        return dict(sample_id=str(rec.get('id', idx)), img_paths=paths, conversations=convs,
                    question_type=rec.get('question_type'), question=question)

    def load_data_list(self):
        try:
            with open(self.ann_file, encoding='utf-8') as f:
                records = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f'LLaVA json {self.ann_file!r} not found: put the conversation json there '
                                    '(or run tools/make_synthetic_dataset.py for the synthetic VQA set)') from None
        except json.JSONDecodeError as e:
            raise BadSampleError(f'not valid json: {e}', source=self.ann_file) from None
        if not isinstance(records, list):
            raise BadSampleError(f'expected a json list of records, got {type(records).__name__}',
                                 source=self.ann_file)
        out = []
        for idx, rec in enumerate(records):
            if (self.question_types is not None and isinstance(rec, dict)
                    and rec.get('question_type') not in self.question_types):
                continue
            try:
                out.append(self._check_record(rec, idx))
            except BadSampleError as error:
                self._bad_sample(error, self.ann_file)
        return out

    # ------------------------------------------------------------------ per sample
    def get_data_info(self, idx: int) -> dict:
        """The record's info plus its encoding: ``input_ids``, ``labels``, ``truncated``, ``gt_answer``."""
        info = super().get_data_info(idx)
        try:
            enc = self.encoder.encode(info['conversations'], test_mode=self.test_mode)
        except ValueError as e:
            raise BadSampleError(f'record id {info["sample_id"]!r}: {e}', source=self.ann_file) from None
        info.update(input_ids=enc.input_ids, labels=enc.labels, truncated=enc.truncated, gt_answer=enc.gt_answer)
        if enc.truncated:
            self.num_truncated += 1
            if self.num_truncated & (self.num_truncated - 1) == 0:  # 1, 2, 4, 8, ...: logged, not flooded
                print_log(f'{type(self).__name__}: {self.num_truncated} conversation(s) longer than max_length='
                          f'{self.encoder.max_length} so far (latest: id {info["sample_id"]!r}); '
                          + ('kept whole in test mode' if self.test_mode else 'cut'),
                          logger='current', level=logging.WARNING)
        return info
