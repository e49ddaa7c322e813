from .rmoe import GroupedExperts, NoisyTopKRouter, RMoE, RoutingContext, balance_loss, grouped_dispatch

__all__ = ['GroupedExperts', 'NoisyTopKRouter', 'RMoE', 'RoutingContext', 'balance_loss',
           'grouped_dispatch']
