"""The DataManager actor: serves the competitor's last prices from a streamed CSV file over a ZeroMQ
ROUTER socket. ``actor`` is the socket edge; ``csv_rows`` and ``price_window`` are its pure rules."""
