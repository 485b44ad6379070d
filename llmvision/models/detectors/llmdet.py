"""LLMDet: Grounding-DINO co-trained with an LLM captioner (REFERENCE.md section 2).

Training adds two caption losses to the detector's: an image-level caption written from the
encoder memory (stride-32 and stride-16 maps) and region-level phrases written from the last
decoder layer's Hungarian-matched queries (matching queries only; the denoising queries that
precede them in the decoder output are skipped). Inference is the detector's: ``predict`` never
runs the LLM, and ``use_captioner=False`` does not even build it (detector-only configs and
checkpoints; the ``captioner.*`` keys of a co-trained checkpoint are then reported as side keys).
"""
from typing import Dict, List, Optional

import torch

from llmvision.registry import MODELS

from .grounding_dino import GroundingDINO


def memory_to_levels(memory: torch.Tensor, spatial_shapes: torch.Tensor) -> List[torch.Tensor]:
    """Flattened encoder memory ``[B, sum(H_l*W_l), C]`` -> per level ``[B, C, H_l, W_l]``."""
    levels, start = [], 0
    for h, w in spatial_shapes.tolist():
        chunk = memory[:, start:start + h * w]
        levels.append(chunk.transpose(1, 2).reshape(memory.shape[0], memory.shape[2], h, w))
        start += h * w
    if start != memory.shape[1]:
        raise ValueError(f'spatial shapes cover {start} tokens, memory has {memory.shape[1]}')
    return levels


@MODELS.register_module()
class LLMDet(GroundingDINO):
    """:class:`GroundingDINO` + :class:`LLMCaptioner` co-training.

    Args:
        captioner: config of an ``LLMCaptioner`` (its ``feat_dims`` must equal ``embed_dims``).
        use_captioner: False builds the detector alone (inference / detector-only training).
        **kwargs: :class:`GroundingDINO` arguments.

    Data samples carry ``metainfo['long_caption']`` (the image caption; missing -> the image
    caption loss skips that image, counted) and ``metainfo['phrases']`` (the phrase of each gt
    label, used as the region caption of the matched query).
    """

    def __init__(self, *args, captioner: Optional[dict] = None, use_captioner: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.captioner = None
        if use_captioner:
            if captioner is None:
                raise ValueError('LLMDet: give a captioner config, or use_captioner=False')
            # built from a forked RNG: adding the captioner leaves the detector's initialisation
            # and the global random stream (DN noise, ...) as in a detector-only run
            with torch.random.fork_rng(devices=[]):
                self.captioner = MODELS.build(captioner) if isinstance(captioner, dict) else captioner

    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        if self.captioner is None:
            return super().loss(inputs, data_samples)
        losses, out = self.loss_with_outputs(inputs, data_samples)
        levels = memory_to_levels(out.memory, out.spatial_shapes)
        num_dn = out.num_denoising
        hidden = out.hidden_states[-1][:, num_dn:]      # [B, Q, C] matching queries only
        boxes = out.all_bbox_preds[-1][:, num_dn:]      # [B, Q, 4] normalized cxcywh
        queries, region_boxes, phrases = [], [], []
        for i, (sample, (q_idx, g_idx)) in enumerate(zip(data_samples, out.last_layer_assign)):
            labels = out.gt_labels[i][g_idx].tolist()
            names = sample.metainfo.get('phrases') or self._entity_names(sample)
            bad = [lab for lab in labels if lab >= len(names)]
            if bad:
                raise ValueError(f'data_samples[{i}] (img_path={sample.metainfo.get("img_path")}): '
                                 f'gt label {bad[0]} has no phrase ({len(names)} phrases)')
            queries.append(hidden[i, q_idx])
            region_boxes.append(boxes[i, q_idx])
            phrases.append([names[lab] for lab in labels])
        captions = [s.metainfo.get('long_caption') for s in data_samples]
        cap_losses = self.captioner.loss(levels, queries, region_boxes, captions, phrases,
                                         out.valid_ratios)
        overlap = set(cap_losses) & set(losses)
        if overlap:
            raise KeyError(f'captioner loss keys clash with detector keys: {sorted(overlap)}')
        losses.update(cap_losses)
        return losses

    @staticmethod
    def _entity_names(sample) -> List[str]:
        """Region phrases when the sample has none: the category names, or caption substrings."""
        text = sample.metainfo.get('text')
        if isinstance(text, (list, tuple)):
            return list(text)
        spans = sample.metainfo.get('tokens_positive') or []
        return [' '.join(text[s:e] for s, e in ent) for ent in spans]
