"""The Algorithm actor: prices each (book, strategy) pair it owns on every tick. ``actor`` runs the
loop; ``pricing``, ``strategies``, ``config`` and ``output`` are pure; ``data_client`` and
``api_client`` are its two clients (DataManager over ZeroMQ, APIServer over HTTP); ``options`` its
command line, which the launcher shares (this package's ``__init__`` imports nothing, so the
launcher can read the options without importing aiohttp)."""
