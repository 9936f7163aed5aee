"""Why a write failed, as types.

SinkError
├── RetryableWriteError   the warehouse is away, slow or overloaded: pause, back off,
│                         retry the same batch with the same deduplication token
└── RejectedRowsError     the warehouse refused the data itself: retrying cannot help;
                          find the offending rows and dead-letter them with the reason
"""

from __future__ import annotations


class SinkError(Exception):
    """Base of everything a sink raises about a write."""


class RetryableWriteError(SinkError):
    """Transient: connection refused or reset, timeout, overload, too many parts."""


class RejectedRowsError(SinkError):
    """Poison: the rows cannot be stored as they are (type, range or parse errors)."""
