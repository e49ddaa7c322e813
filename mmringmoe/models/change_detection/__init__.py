from .bit_head import BITHead, SemanticTokenizer
from .siamese_encoder_decoder import SiameseEncoderDecoder

__all__ = ['BITHead', 'SemanticTokenizer', 'SiameseEncoderDecoder']
