"""The platform service: health, partner self-check, audit-chain verification."""
