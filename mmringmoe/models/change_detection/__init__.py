from .bit_head import BITHead, SemanticTokenizer
from .siamese_encoder_decoder import SiameseEncoderDecoder, add_moe_balance_loss

__all__ = ['BITHead', 'SemanticTokenizer', 'SiameseEncoderDecoder',
           'add_moe_balance_loss']
