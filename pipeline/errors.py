"""User-facing errors: the message is the whole story, no traceback needed."""


class GanLabError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class ConfigError(GanLabError):
    """params.yaml (or a CLI option) holds an unknown key, a wrong type or an unknown name."""


class DataError(GanLabError):
    """A dataset could not be found, downloaded or read."""


class TrainingDiverged(GanLabError):
    """A loss became NaN or infinite."""


class CheckpointError(GanLabError):
    """A checkpoint or generated-samples file is missing, truncated or not what it should be."""
