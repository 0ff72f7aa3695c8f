"""The SHA-256 of the model shipped in models/, pinned in code.

``ml.load_model()`` without a path refuses a shipped file whose hash differs, even if the hash
file beside it was rewritten too. ``pulmocalc train --ship`` updates this file.
"""

SHIPPED_SHA256 = "98fd4442f9ddf6ecab724a6509921f9207e8d6d1425588b0c9f209f2c3bb3e69"
