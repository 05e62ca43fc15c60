"""Providers beyond the local engines: the fallback adapters (one per stage) and the cloud clients.

The adapters need nothing beyond the package. The cloud clients need the optional ``appliance[cloud]`` extra and
are imported only when the config names a cloud provider and ``privacy.allow_cloud`` is true. Every request that
carries the user's audio or text is counted and logged by an ``EgressLedger`` (provider, kind, bytes: never the
content).
"""
