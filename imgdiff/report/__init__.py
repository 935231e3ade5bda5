"""Renderers: they read a :class:`~imgdiff.model.Report` and never parse images."""
