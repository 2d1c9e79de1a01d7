//! Alert delivery to in-process webhook receivers.
