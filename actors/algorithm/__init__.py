"""The Algorithm actor: prices each (book, strategy) pair it owns on every tick.

``actor`` wires the jobs: ``ticks`` (which ticks to follow), ``dispatch`` (which pair next, pure),
``pool`` (the worker coroutines), ``pipeline`` (the steps of a decision), ``roster`` (which pairs are
priced now), ``writer``/``output`` (printing). The rules are pure: ``pricing``, ``guardrails``,
``strategies``. ``config/`` reads the TOML config (pure parsing; ``files`` reads what it names,
bounded; ``reload`` on SIGHUP); ``clients/`` holds the DataManager, APIServer and Ledger clients.
``options`` is its command line, which the launcher shares: this package's ``__init__`` imports
nothing, so the launcher can read the options without importing the clients.
"""
