"""The two token kinds, the 2,000,000-token block, and the allocation columns they map to.

The shared core of the models package: every other module here imports from it.
"""

from django.db import models

BLOCK = 2_000_000


class TokenKind(models.TextChoices):
    INFERENCE = "inference", "Inference"
    EMBEDDING = "embedding", "Embedding"


# The editable allocation columns of a membership, and the kind each one limits.
MAX_COLUMNS = {
    "max_inference_tokens": TokenKind.INFERENCE,
    "max_embedding_tokens": TokenKind.EMBEDDING,
}
COLUMN_LABELS = {
    "max_inference_tokens": "Max Inference Tokens",
    "max_embedding_tokens": "Max Embedding Tokens",
}
KIND_HELP = {
    TokenKind.INFERENCE: (
        "Inference tokens: prompts sent to models and the completions they return."
    ),
    TokenKind.EMBEDDING: (
        "Embedding tokens (formerly “train tokens”): used to build training datasets "
        "and ingest documents."
    ),
}


def column_for_kind(kind: str) -> str:
    return f"max_{kind}_tokens"
