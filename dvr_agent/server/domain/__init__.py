"""The control plane's domain: allocation, topology operations and scheduling over the DB.

Functions here take a SQLAlchemy session and plain values, and return results plus the
notifications the change calls for (as data); they never touch the RPC bus, so the same
decisions serve the RPC handlers, the notifier and dvrctl, and tests can check them directly.
"""
