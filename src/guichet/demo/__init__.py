"""The demo data: the two founding notices (Saint-Nazaire 2024, Maisons-Alfort 2022) as notice files."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
SEEDS = ("saint-nazaire.yaml", "maisons-alfort.yaml")


def seed_paths() -> list[Path]:
    return [DEMO_DIR / name for name in SEEDS]
