"""The SHA-256 of the model shipped in models/, pinned in code.

``ml.load_model()`` without a path refuses a shipped file whose hash differs, even if the hash
file beside it was rewritten too. ``pulmocalc train --ship`` updates this file.
"""

SHIPPED_SHA256 = None
