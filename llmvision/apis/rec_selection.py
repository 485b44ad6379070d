"""The REC selector as a method of :func:`llmvision.evaluation.accuracy_table`."""
from typing import Callable

from llmvision.datasets.rec import pack_selector_sample
from llmvision.evaluation.rec_table import Method


def llm_selector(model, batch_size: int = 16, pack: Callable = None) -> Method:
    """Method running ``model.predict`` (a :class:`RECSelector`) in batches of ``batch_size``.

    ``pack`` turns a sample into ``dict(inputs, data_samples)`` (default:
    :func:`llmvision.datasets.rec.pack_selector_sample`).
    """
    if pack is None:
        pack = pack_selector_sample

    def run(samples):
        was_training = model.training
        model.eval()
        boxes = []
        for i in range(0, len(samples), batch_size):
            packed = [pack(s)['data_samples'] for s in samples[i:i + batch_size]]
            for out in model.predict(packed):
                b = out.pred_instances.bboxes
                boxes.append(b[0] if len(b) else None)
        model.train(was_training)
        return boxes
    return run
