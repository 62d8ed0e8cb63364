"""The local stack: the service's template and handlers running on one machine (see `make run`)."""
