"""The Ledger actor: every decision kept in SQLite, and each pair's last decided price for a restarted
Algorithm worker; ``python -m actors.ledger history|summary`` reads it back."""
