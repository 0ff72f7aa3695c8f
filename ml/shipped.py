"""The SHA-256 of the model shipped in models/, pinned in code.

``ml.load_model()`` without a path refuses a shipped file whose hash differs, even if the hash
file beside it was rewritten too. ``pulmocalc train --ship`` updates this file.
"""

SHIPPED_SHA256 = "da2d4f6e2a84e6419398d94eb4b99a3caf439b7dbdd472e973b0680158d12bb4"
