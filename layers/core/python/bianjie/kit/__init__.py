"""What every service shares: config, errors, crypto, auth, audit, storage ports, logging, tracing."""
