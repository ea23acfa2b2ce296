"""The journal: an append-only, hash-linked record of every change.

Each organisation has its own chain (``chain`` = organisation id, 0 for platform-wide
changes), so that a deployment hosting several towns can be split by organisation. Within a
chain, entries are numbered 1, 2, 3... and each entry's hash covers the previous one's.
"""

from django.db import models


class Entry(models.Model):
    chain = models.BigIntegerField(db_index=True)
    seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=80)
    channel = models.CharField(max_length=20)
    operation = models.CharField(max_length=80)
    refs = models.JSONField(default=list)
    details = models.JSONField(default=dict)
    payload_digest = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="journal_entry_chain_seq_unique"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="journal_entry_seq_positive"),
        ]
        ordering = ["chain", "seq"]

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq} {self.operation}"


class Head(models.Model):
    """The last entry of each chain: locked by every append, so appends are serialised."""

    chain = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"chain {self.chain} at {self.seq}"
