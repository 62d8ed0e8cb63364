"""feedback_core: the domain logic, storage and events of the feedback service, shared by every function."""
