"""The SHA-256 of the model shipped in models/, pinned in code.

``ml.load_model()`` without a path refuses a shipped file whose hash differs, even if the hash
file beside it was rewritten too. ``pulmocalc train --ship`` updates this file.
"""

SHIPPED_SHA256 = "8e932a64891dd7023bcfb4fa1bd9fdb4721a471b960889e53bd3c2e292b6e47e"
