from .private_rng import PrivateRNG

__all__ = ['PrivateRNG']
