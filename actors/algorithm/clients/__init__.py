"""The Algorithm's three clients, each with its reliability pattern: ``data_manager`` (DEALER to the
DataManager, Lazy Pirate), ``api`` over ``http`` (the APIServer, paced by ``pacing``'s token
buckets) and ``ledger`` with its ``outbox`` (every decision kept, resent until acknowledged)."""
