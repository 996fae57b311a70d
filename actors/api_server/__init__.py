"""The APIServer actor: an aiohttp mock of Amazon's repricing API. ``actor`` is the HTTP edge;
``request_ids`` the pure id scheme."""
