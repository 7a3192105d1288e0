"""The single exception type of the dev environment, so callers (the CLI) can
turn any start/stop failure into one clear message."""


class DevEnvError(RuntimeError):
    """A component of the local test world could not be built, started or stopped."""
