"""The workbench's own error types: every bad input ends in one of these, with a message naming the
file, field, shape or layer at fault, never a stack trace from deep inside torch."""


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ModelUnavailableError(WorkbenchError):
    """A model is neither shipped, cached locally, nor downloadable right now."""


class InputFormatError(WorkbenchError):
    """A file or value from the user does not have the expected structure."""


class ShapeError(WorkbenchError):
    """A tensor's shape does not fit the model (d_model, layer count, ...)."""


class LayerError(WorkbenchError):
    """A layer index outside the model's range."""
