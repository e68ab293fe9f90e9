"""The neural family: a Markov source, flax models trained with optax, record and spec."""

from sim.families.neural.family import (
    Config,
    DecodeRule,
    NeuralInfo,
    NeuralParams,
    NeuralStats,
    neural_family,
    real_params,
)
from sim.families.neural.record import NeuralRecord, neural_record
from sim.families.neural.source import MarkovSource, markov_source
from sim.families.neural.spec import SPEC  # noqa: E402  (registers the family)

__all__ = [
    "SPEC",
    "Config",
    "DecodeRule",
    "MarkovSource",
    "NeuralInfo",
    "NeuralParams",
    "NeuralRecord",
    "NeuralStats",
    "markov_source",
    "neural_family",
    "neural_record",
    "real_params",
]
