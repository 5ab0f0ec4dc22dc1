"""FirstSpike host software: the TTFS arithmetic, the golden model, the model file,
encoding, data sets and the command line. Needs NumPy only (never Amaranth)."""

from .arith import NO_SPIKE, decide, first_crossing, integrate, saturate
from .cycles import cycles_per_inference, ideal_cycles
from .encoding import LatencyEncoding
from .errors import DatasetError, FirstSpikeError, ModelFileError, SpikeInputError
from .golden import GoldenResult, simulate, simulate_batches
from .model import Layer, Model, load_model, save_model
from .params import CoreParams, DecisionRule, Kernel, Schedule

__version__ = "0.1.0"

__all__ = [
    "NO_SPIKE", "decide", "first_crossing", "integrate", "saturate",
    "cycles_per_inference", "ideal_cycles", "LatencyEncoding",
    "DatasetError", "FirstSpikeError", "ModelFileError", "SpikeInputError",
    "GoldenResult", "simulate", "simulate_batches",
    "Layer", "Model", "load_model", "save_model",
    "CoreParams", "DecisionRule", "Kernel", "Schedule",
]
