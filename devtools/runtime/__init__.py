"""The local Lambda runtime: the runner polls queues and schedules and invokes handlers in
sandboxes (one fresh interpreter each, `worker.py`) with the functions' limits; the supervisor
keeps `make run`'s processes up."""
