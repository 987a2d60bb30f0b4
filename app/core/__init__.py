"""The vocabulary every part of Tautan shares, free of any framework: tables, errors, the
caller (`Principal`), slugs, destinations, client addresses, the database connection.
Nothing here imports FastAPI, Starlette, or any other part of the app."""
