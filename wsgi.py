"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi run``."""

from pbschool import create_app

app = create_app()
