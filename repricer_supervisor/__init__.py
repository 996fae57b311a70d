"""The supervisor behind ``launcher.py``: ``policy`` (pure restart and hang rules), ``children``
(starting an actor process), ``procfs`` (memory readings) and ``supervisor`` (the loop that applies
the policy)."""
