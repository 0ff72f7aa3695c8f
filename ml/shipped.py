"""The SHA-256 of the model shipped in models/, pinned in code.

``ml.load_model()`` without a path refuses a shipped file whose hash differs, even if the hash
file beside it was rewritten too. ``pulmocalc train --ship`` updates this file.
"""

SHIPPED_SHA256 = "c88e5bf1040dfe7e601d7a5e634332b0174bac915a67ff0951a6c5a8b8b774f1"
