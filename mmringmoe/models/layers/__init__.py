from .rmoe import (GroupedExperts, NoisyTopKRouter, RMoE, RoutingContext, SharedExpertFFN,
                   balance_loss, grouped_dispatch)

__all__ = ['GroupedExperts', 'NoisyTopKRouter', 'RMoE', 'RoutingContext', 'SharedExpertFFN',
           'balance_loss', 'grouped_dispatch']
