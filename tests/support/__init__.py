"""What tests share apart from fixtures (which stay in conftest.py): import it from here."""
