"""Read a pure-Python config with clear errors (tools, the inference API)."""
import os.path as osp

from mmengine.config import Config


class ConfigError(ValueError):
    """A config file that cannot be used, with the file named in the message."""


def load_config(path: str, cfg_options: dict = None) -> Config:
    """Read a pure-Python config and apply ``--cfg-options`` overrides.

    Raises:
        FileNotFoundError: the config file does not exist.
        ConfigError: the file cannot be parsed, or an override names a bad key.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        raise ConfigError(f'{path}:{err.lineno}: syntax error in config: {err.msg}') from err
    except Exception as err:
        raise ConfigError(f'{path}: cannot load config: {err.__class__.__name__}: {err}') from err
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise ConfigError(f'{path}: bad --cfg-options {cfg_options}: {err}') from err
    if 'model' not in cfg:
        raise ConfigError(f'{path}: config defines no `model`')
    return cfg
