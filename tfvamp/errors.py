"""The errors of a training that cannot go on: data with a NaN or an
infinity, and a loss that became one."""


class NonFiniteInputError(ValueError):
    """The training data holds a NaN or an infinity."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""
