"""Operations tooling (issue 20): point-in-time restore and its checks, object-storage copies, and the
writers the backup and failover rehearsals (``scripts/ops/``) load the database with."""
