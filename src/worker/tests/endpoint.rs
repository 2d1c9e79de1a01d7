//! `/metrics` and `/healthz` over HTTP, and the findings `status` and the worker share.
