"""The Algorithm actor: prices each (book, strategy) pair it owns on every tick. ``actor`` runs the
loop; ``pricing``, ``strategies``, ``guardrails``, ``output`` and the config's parsing (``config``,
``config_values``, ``config_guardrails``, ``catalog``) are pure; ``config_files`` reads the files a
config names, bounded, and ``reload`` reloads it; ``data_client`` and ``api_client`` are its two
clients (DataManager over ZeroMQ, APIServer over HTTP); ``options`` its command line, which the
launcher shares (this package's ``__init__`` imports nothing, so the launcher can read the options
without importing aiohttp)."""
