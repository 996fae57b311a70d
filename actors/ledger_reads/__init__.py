"""Reading the Ledger's database, shared by the Dashboard (which reads the file when it runs beside it)
and the Ledger (which answers the same queries over its socket when the Dashboard runs elsewhere):
the queries are written once here (:mod:`.queries`), each returning plain values (rows of str, int,
float, None) that cross msgpack unchanged, run on a bounded pool of read-only connections
(:mod:`.pool`)."""
