"""The bundled sample community (CC BY-SA, see ATTRIBUTION.md) used by ``parvis demo``."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path

SAMPLE = "french_language_meta.tar.xz"


@contextmanager
def sample_folder() -> Iterator[Path]:
    """A temporary folder holding the sample's XML files."""
    with as_file(files("parvis.demo") / SAMPLE) as archive, tempfile.TemporaryDirectory(prefix="parvis-demo-") as tmp:
        folder = Path(tmp) / "french.meta.stackexchange.com"
        with tarfile.open(archive) as bundle:
            bundle.extractall(folder, filter="data")
        yield folder
