"""REC selector data: refer-layout records, candidate sources and files, fine-tuning samples."""
from .candidate_file import candidate_line, done_keys, iter_candidate_records, repair_tail
from .finetune_builder import best_candidate, build_selector_samples, iou_passes, shuffled_copies
from .json_source import JsonCandidateSource
from .refer_records import load_refer_records, rec_key, split_names
from .selector_dataset import RECSelectorDataset, pack_selector_sample
from .synthetic_source import SyntheticCandidateSource

__all__ = ['load_refer_records', 'rec_key', 'split_names', 'JsonCandidateSource',
           'SyntheticCandidateSource', 'candidate_line', 'done_keys', 'iter_candidate_records',
           'repair_tail', 'best_candidate', 'build_selector_samples', 'iou_passes',
           'shuffled_copies', 'RECSelectorDataset', 'pack_selector_sample']
