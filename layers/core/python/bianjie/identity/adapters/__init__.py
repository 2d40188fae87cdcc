"""Adapters of the identity service to outside systems (the upstream identity providers, relying
parties' back-channel logout endpoints): the only modules of ``bianjie.identity`` that do network I/O."""
