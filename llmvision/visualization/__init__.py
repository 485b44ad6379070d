"""Drawing boxes, labels and scores: used by the demo, the test-time hook and the browse tools."""
from .draw import PALETTE, color_for, draw_detections
from .ref_vlm import draw_ref_answer

__all__ = ['PALETTE', 'color_for', 'draw_detections', 'draw_ref_answer']
