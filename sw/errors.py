"""FirstSpike's own error family: user mistakes that the CLI turns into one clear line."""

__all__ = ["FirstSpikeError", "ModelFileError", "DatasetError", "SpikeInputError", "NotOnTheCore"]


class FirstSpikeError(Exception):
    """A problem with what the user gave (a file, a value, a missing data set)."""


class ModelFileError(FirstSpikeError, ValueError):
    """A model file that cannot be read, or whose contents break the format's rules."""


class DatasetError(FirstSpikeError):
    """A data set that is missing or malformed."""


class SpikeInputError(FirstSpikeError, ValueError):
    """Input spike times of the wrong shape, type or range."""


class NotOnTheCore(FirstSpikeError):
    """A network the gateware cannot run (yet): the golden model runs it."""
