"""The local API Gateway: HTTP to the Chalice app's handlers (`server.py`), with the TOKEN
authorizer and its cache (`auth.py`) and the invocation with timeouts and payload limits (`invoke.py`)."""
