"""The web layer: the Marketo-compatible REST API, built by ``create_app(settings)``."""
