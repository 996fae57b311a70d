"""The Algorithm actor: prices each (book, strategy) pair it owns on every tick. ``actor`` wires the
jobs: ``ticks`` (tick intake), ``dispatch`` (which pair next, pure), ``pool`` (the worker coroutines),
``pipeline`` (the steps and checks of a decision), ``writer`` (printing without blocking);
``pricing``, ``strategies``, ``guardrails``, ``output``, ``pacing`` and the config's parsing
(``config``, ``config_values``, ``config_guardrails``, ``catalog``) are pure; ``config_files`` reads
the files a config names, bounded, and ``reload`` reloads it; ``data_client``, ``api_client`` and
``http_client`` are its clients (DataManager over ZeroMQ, APIServer over HTTP), ``ledger_client`` and
``ledger_outbox`` its Ledger's; ``options`` its command line, which the launcher shares (this
package's ``__init__`` imports nothing, so the launcher can read the options without importing the
clients)."""
