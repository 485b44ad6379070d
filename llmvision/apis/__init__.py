"""Public inference API (used by tools/image_demo.py and tests)."""
from .draw import color_for, draw_detections

__all__ = ['color_for', 'draw_detections']
