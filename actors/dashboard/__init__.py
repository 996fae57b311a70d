"""The Dashboard: a browser view of the repricer's prices (from the Ledger's database) and health (from
the launcher's events)."""
