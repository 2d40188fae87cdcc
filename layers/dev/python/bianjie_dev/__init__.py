"""Development tooling for bianjie: the local stack, the CLI, demos, stand-ins and test data.

Never shipped to a production function: the core layer (``layers/core/python/bianjie``) must import and
run without this package. Its modules mirror the production paths they serve (``bianjie.pay`` ->
``bianjie_dev.pay``), so a service's tooling is easy to find.
"""
