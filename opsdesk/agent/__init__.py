"""The host agent: collects with psutil, watches system state, buffers on disk, pushes batches.

It imports only the standard library and psutil, so that it stays small on customer servers.
"""
