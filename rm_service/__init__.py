"""The reward-model service: a Django app (models, services, selectors, APIs, views, tasks) around the
pure-torch core in ``rm_service.core``.

Loading the app imports neither torch nor numpy: only ``rm_service.worker`` imports the core, and the other
modules import the worker inside the functions that run model work. ``python -m rm_service`` is the core's
command line.
"""
