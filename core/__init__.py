"""The termdesk domain: the Desk facade and everything it runs on (policy, tickets, queues, events).

`core` is async, knows nothing of screens, and is the only layer that decides
who may see or change what.
"""

from core.desk import Desk

__all__ = ["Desk"]
