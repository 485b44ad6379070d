"""Load a converted state dict into a model and report what did not match."""
from dataclasses import dataclass, field
from typing import Dict, List

import torch
from mmengine.logging import print_log


@dataclass
class ConversionReport:
    """Keys the converter could not place (``unconverted``), keys set aside on purpose
    (``side``: LLM / captioner parts), and after loading ``missing`` / ``unexpected`` keys and
    ``shape_mismatch`` (key, checkpoint shape, model shape)."""
    unconverted: List[str] = field(default_factory=list)
    side: Dict[str, torch.Tensor] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    shape_mismatch: List[tuple] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unconverted or self.missing or self.unexpected or self.shape_mismatch)

    def summary(self, limit: int = 20) -> str:
        def part(name, items):
            items = list(items)
            more = f' ... (+{len(items) - limit})' if len(items) > limit else ''
            return f'{name} ({len(items)}): {items[:limit]}{more}'
        lines = [part('unconverted source keys', self.unconverted),
                 part('missing in checkpoint', self.missing),
                 part('unexpected in checkpoint', self.unexpected),
                 part('shape mismatch', self.shape_mismatch),
                 f'side keys kept apart (LLM/captioner): {len(self.side)}']
        return '\n'.join(lines)


def load_converted(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                   report: ConversionReport = None, strict: bool = False) -> ConversionReport:
    """Load ``state_dict`` (our key names) into ``model``; shape mismatches are skipped and reported.

    ``strict=True`` raises a ``KeyError`` with the full report when anything is off.
    """
    report = report or ConversionReport()
    own = model.state_dict()
    usable = {}
    for k, v in state_dict.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            report.shape_mismatch.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            usable[k] = v
    res = model.load_state_dict(usable, strict=False)
    report.missing = [k for k in res.missing_keys if k not in {s[0] for s in report.shape_mismatch}]
    report.unexpected = list(res.unexpected_keys)
    if strict and not report.ok:
        raise KeyError('checkpoint does not match the model:\n' + report.summary())
    if not report.ok:
        print_log('checkpoint conversion report:\n' + report.summary(), logger='current')
    return report
