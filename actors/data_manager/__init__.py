"""The DataManager actor: serves the competitor's last prices from a streamed CSV file over a ZeroMQ
ROUTER socket. ``actor`` is the socket edge; ``book_store`` and ``price_window`` are its pure rules
(a row of the file is parsed by the shared ``actors.csv_rows``)."""
