"""Training-loop glue: optimizer wrappers, hooks, result dumping, runner helpers."""
from .dump_results import DumpDetResults
from .hooks import DetVisualizationHook, RNGStateHook
from .launch import ConfigError, build_runner, load_config
from .optim_wrappers import BF16OptimWrapper

__all__ = ['BF16OptimWrapper', 'ConfigError', 'DetVisualizationHook', 'DumpDetResults', 'RNGStateHook',
           'build_runner', 'load_config']
