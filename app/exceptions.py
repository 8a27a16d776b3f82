"""Errors raised by the application shell (settings, broker, topics, workers)."""


class ResontinexError(Exception):
    """Base class of every error the application shell raises."""


class UsageError(ResontinexError):
    """Bad command-line usage or a bad input file (exit code 2)."""


class BrokerError(ResontinexError):
    """The embedded broker could not be started or did not become ready."""


class TopicLayoutError(ResontinexError):
    """Topics exist with settings that break co-partitioning, or with another cleanup or retention."""
