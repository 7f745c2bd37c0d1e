"""``bulkref serve``: the whole import in a browser, for the people who do it.

Start -> Check -> Review -> Approve and apply -> Results, and Export: pages
rendered on the server over the public library API (``import bulkref``), and
nothing else of bulkref (tests/test_web_layer.py enforces it). Imports are kept
in the data directory (``store``); long calls run in threads (``jobs``);
``security`` holds the access token, CSRF, upload limit and headers.
"""
