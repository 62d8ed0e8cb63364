"""feedback-operator: administration of a deployed (or local) stack with AWS credentials (API keys).

Unlike ``feedbackctl``, which only speaks the service's HTTP API, it writes the stack's tables directly:
the first API key of a project cannot be created through an API that needs a key.
"""
