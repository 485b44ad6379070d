"""Per-conversation data container of the multimodal LLMs (LLaVA, VLoRA, LLaVolta, REF-VLM).

An :class:`LMMDataSample` travels from the conversation dataset through the model to the metrics.

Data fields:
  input_ids: ``LongTensor [T]``, the chat-templated conversation. Each image placeholder is ONE entry
      equal to :data:`IMAGE_TOKEN_INDEX`; the model replaces it with that image's visual tokens. In test
      mode the sequence ends with the assistant generation prompt.
  labels: ``LongTensor [T]``, :data:`IGNORE_INDEX` everywhere except the assistant answer tokens
      (including the template's end-of-turn token); all IGNORE_INDEX in test mode.

Metainfo keys:
  sample_id, img_paths (list of str), num_images (int), question_type (str or None),
  gt_answer (str: the reference answer of the last turn, used by metrics), truncated (bool).

Predictions (set by ``predict``):
  pred_text: the generated answer (str).
"""
from mmengine.structures import BaseDataElement

IGNORE_INDEX = -100
IMAGE_TOKEN_INDEX = -200


class LMMDataSample(BaseDataElement):
    """One conversation: ``input_ids [T]``, ``labels [T]`` and metainfo (see the module docstring)."""
