"""The Scheduler actor: publishes a Tick every interval on a ZeroMQ PUB socket."""
