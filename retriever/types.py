"""Result values of retrieval; serialised once for --json and HTTP."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Hit:
    """One ranked passage: where it is, what it says, and how each stage scored it."""

    rank: int
    score: float
    chunk_id: int
    path: str
    root: str
    text: str
    title: str | None = None
    heading: str | None = None
    page: int | None = None
    start_char: int | None = None
    end_char: int | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_row(cls, rank: int, score: float, row: dict, scores: dict[str, float]) -> Hit:
        """A hit from its chunk's row (``Snapshot.chunks``)."""
        return cls(
            rank=rank,
            score=score,
            chunk_id=row["chunk_id"],
            path=row["path"],
            root=row["root"],
            text=row["text"],
            title=row["title"],
            heading=row["heading"],
            page=row["page"],
            start_char=row["start_char"],
            end_char=row["end_char"],
            scores=scores,
        )

    @property
    def location(self) -> str:
        """Human-readable place in the file: page, heading and character range."""
        parts = []
        if self.page is not None:
            parts.append(f"p.{self.page}")
        if self.heading:
            parts.append(f"§ {self.heading}")
        if self.start_char is not None:
            parts.append(f"chars {self.start_char}-{self.end_char}")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["location"] = self.location
        return data
