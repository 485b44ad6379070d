"""Training-loop glue: optimizer wrappers, hooks, runner helpers."""
from .hooks import RNGStateHook
from .launch import ConfigError, build_runner, load_config
from .optim_wrappers import BF16OptimWrapper

__all__ = ['BF16OptimWrapper', 'ConfigError', 'RNGStateHook', 'build_runner', 'load_config']
