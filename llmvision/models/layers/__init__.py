from .attention import MultiheadAttention
from .contrastive_embed import ContrastiveEmbed
from .decoder import GroundingDecoderLayer, GroundingDinoDecoder, inverse_sigmoid
from .encoder import DeformableEncoderLayer, GroundingDinoEncoder, TextEnhancerLayer, encoder_reference_points
from .ffn import FFN
from .fusion import BiAttentionBlock, BiMultiHeadAttention, DropPath
from .mlp import MLP
from .position_encoding import SinePositionalEncoding2D, coordinate_to_encoding
from .proposals import encoder_output_proposals

__all__ = ['MultiheadAttention', 'ContrastiveEmbed', 'GroundingDecoderLayer', 'GroundingDinoDecoder',
           'inverse_sigmoid', 'DeformableEncoderLayer', 'GroundingDinoEncoder', 'TextEnhancerLayer',
           'encoder_reference_points', 'FFN', 'BiAttentionBlock', 'BiMultiHeadAttention', 'DropPath',
           'MLP', 'SinePositionalEncoding2D', 'coordinate_to_encoding', 'encoder_output_proposals']
