"""A worker's local spool: every decision kept on disk, fsync'd, before it is printed; what the worker
ships to the Ledger (:mod:`.spool`), its files (:mod:`.disk`) and their bytes (:mod:`.records`)."""
