"""The service: the ZeroMQ server around one engine (socket loop, admission of a submit, the
device worker, the job queue), and the background daemon that runs it."""
