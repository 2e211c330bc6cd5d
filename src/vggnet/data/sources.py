"""The files of a dataset folder or archive, listed and read the same way for a directory, a
.tar/.tar.gz and a .zip.

Symbolic links are followed (a class folder may be a link), with a guard against cycles: a link
back to one of its own parent folders is listed as ignored, never walked forever. Inside an
archive, hard and symbolic links resolve to the member holding the data, and a link or name that
leads outside the archive is ignored. Names are relative POSIX paths; a name that is not valid
UTF-8 keeps its bytes as surrogate escapes (see :func:`printable`).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from vggnet.data.decode import BadImage
from vggnet.errors import DataError
from vggnet.files import UnreadableFile, max_file_bytes, over_bound, read_regular
from vggnet.terminal import printable_text as printable

MAX_LINK_HOPS = 40  # as the Linux kernel allows


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


Listing = dict[str, str]  # name -> 'file' | why it is not one (a broken link, a cycle, a device ...)


SkipFolder = Callable[[str], "str | None"]  # a folder's name -> why it is not entered, or None


Walked = Callable[[str], None]  # called with each folder just before it is listed


def _walk(children: Callable[[str], list[tuple[str, str]]], identity: Callable[[str], object],
          skip: SkipFolder, walked: Walked | None = None) -> Listing:
    """Depth-first over ``children(dir) -> [(name, 'file'|'dir'|why)]``. Each real folder is read
    once (``identity`` tells folders apart through links), so link cycles and links fanning out to
    the same folders cost nothing; folders ``skip`` names (hidden ones, litter) are not entered."""
    found: Listing = {}
    seen: dict[object, str] = {identity(""): "."}

    def visit(folder: str) -> None:
        if walked is not None:
            walked(folder)
        for name, kind in sorted(children(folder)):  # the same classes whatever order the disk lists
            path = f"{folder}/{name}" if folder else name
            if kind != "dir":
                found[path] = kind
                continue
            why = skip(name)
            ident = identity(path) if why is None else None
            if why is None and ident in seen:
                why = f"the same folder as {printable(seen[ident])}, read once"
            if why is not None:
                found[path + "/"] = why
                continue
            seen[ident] = path
            visit(path)

    visit("")
    return found


def _enter_all(name: str) -> str | None:
    return None


class FileSource:
    """A dataset's files: :meth:`files` lists them, :meth:`read` returns one's bytes."""

    path: Path

    def files(self, skip: SkipFolder = _enter_all, walked: Walked | None = None) -> Listing:
        """Every entry below the top (files, and why others are not files); ``walked`` hears of
        each folder just before it is listed."""
        raise NotImplementedError

    def read(self, name: str, limit: int | None = None) -> bytes:
        raise NotImplementedError

    def size(self, name: str) -> int:
        """A file's size in bytes, without reading it."""
        raise NotImplementedError

    def where(self, name: str) -> str:
        """Where a file is, as a user would look for it: a path, or ``archive:member``."""
        return f"{self.path}:{printable(name)}"

    def fingerprint(self, names: list[str]) -> str:
        """Changes when any of the files ``names`` changes."""
        raise NotImplementedError


class DirectorySource(FileSource):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.bound = max_file_bytes()  # read here, in the main process: a bad value is one line

    def _children(self, folder: str) -> list[tuple[str, str]]:
        out = []
        try:
            entries = list(os.scandir(self.path / folder))
        except OSError as err:
            if not folder:
                raise DataError(f"cannot list {self.path}: {err.strerror}") from None
            return [("", f"a folder that cannot be listed ({err.strerror})")]  # named 'folder/' by the walk
        for entry in entries:
            try:  # the kind from the directory listing itself (d_type): no stat per file, unless a link
                kind = "dir" if entry.is_dir() else "file" if entry.is_file() else None
                if kind is None:
                    st = entry.stat(follow_symlinks=True)
                    kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) \
                        else "not a regular file"
            except OSError:
                kind = "a broken link" if entry.is_symlink() else "cannot be read"
            out.append((entry.name, kind))
        return out

    def _identity(self, folder: str) -> tuple[int, int]:
        st = os.stat(self.path / folder)
        return st.st_dev, st.st_ino

    def files(self, skip: SkipFolder = _enter_all, walked: Walked | None = None) -> Listing:
        return _walk(self._children, self._identity, skip, walked)

    def read(self, name: str, limit: int | None = None) -> bytes:
        return read_regular(self.path / name, self.bound, head=limit)  # a FIFO put here since the listing

    def size(self, name: str) -> int:
        return os.stat(self.path / name).st_size

    def where(self, name: str) -> str:
        return printable(str(self.path / name))

    def fingerprint(self, names: list[str]) -> str:
        h = hashlib.sha256(_encoded(str(self.path.resolve())))
        for name in names:
            st = os.stat(self.path / name)
            h.update(_encoded(f"{name}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}\n"))
        return h.hexdigest()[:24]


class _ArchiveTree:
    """Folders, files and links of an archive's member names, to walk like a directory."""

    def __init__(self) -> None:
        self.files: dict[str, object] = {}  # name -> what to read
        self.links: dict[str, str] = {}  # name -> target name (normalised, inside the archive)
        self.dirs: dict[str, dict[str, None]] = {"": {}}  # folder -> its entries, in order
        self.ignored: Listing = {}

    def add(self, name: str, kind: str, payload: object = None) -> None:
        """Add a member; a link's ``payload`` is its target, already relative to the archive's top."""
        clean = posixpath.normpath(name)
        if name.startswith("/") or clean.startswith(".."):
            self.ignored[name] = "a name outside the archive's folder"
            return
        if clean == ".":
            return
        if kind == "link":
            target = posixpath.normpath(str(payload))
            if str(payload).startswith("/") or target.startswith(".."):
                self.ignored[name] = "a link to a file outside the archive"
                return
            payload = target
        parts = clean.split("/")
        for i in range(len(parts)):
            parent, child = "/".join(parts[:i]), parts[i]
            self.dirs.setdefault(parent, {})[child] = None
        if kind == "dir":
            self.dirs.setdefault(clean, {})
        elif kind == "link":
            self.links[clean] = payload  # type: ignore[assignment]
        else:
            self.files[clean] = payload

    def resolve(self, name: str) -> str | None:
        """The file or folder a name leads to through links; None if it leads nowhere or outside."""
        for _ in range(MAX_LINK_HOPS):
            if name in self.files or name in self.dirs:
                return name
            if name not in self.links:
                head, _, tail = name.rpartition("/")
                if head and (real := self.resolve(head)) is not None and real != head:
                    name = f"{real}/{tail}"  # a link among the parent folders
                    continue
                return None
            name = self.links[name]
        return None

    def children(self, folder: str) -> list[tuple[str, str]]:
        real = self.resolve(folder) if folder else ""
        out = []
        for child in self.dirs.get(real if real is not None else folder, {}):
            target = self.resolve(f"{real}/{child}" if real else child)
            if target is None:
                out.append((child, "a link that leads nowhere inside the archive"))
            else:
                out.append((child, "dir" if target in self.dirs else "file"))
        return out


class ArchiveSource(FileSource):
    """A .tar/.tar.gz/.tar.bz2/.tar.xz or .zip; each process opens its own handle (DataLoader workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bound = max_file_bytes()
        self._handle: tarfile.TarFile | zipfile.ZipFile | None = None
        self._pid = -1
        self._tree: _ArchiveTree | None = None

    def _open(self) -> _ArchiveTree:
        if self._tree is None or self._pid != os.getpid():
            try:
                if _starts_like_zip(self.path):
                    self._handle, self._tree = _zip_tree(self.path)
                else:
                    self._handle, self._tree = _tar_tree(self.path)
            except (tarfile.ReadError, zipfile.BadZipFile):  # tarfile's own text lists per-codec attempts
                raise DataError(f"cannot read archive {self.path}: not a tar or zip archive, or a damaged one") \
                    from None
            except (tarfile.TarError, OSError, EOFError) as err:
                raise DataError(f"cannot read archive {self.path}: {err}") from None
            self._pid = os.getpid()
        return self._tree

    def files(self, skip: SkipFolder = _enter_all, walked: Walked | None = None) -> Listing:
        tree = self._open()
        found = _walk(tree.children, lambda folder: tree.resolve(folder) if folder else "", skip, walked)
        return {**tree.ignored, **found}

    def _member(self, name: str) -> tuple[tarfile.TarInfo | zipfile.ZipInfo, int]:
        tree = self._open()
        member = tree.files[tree.resolve(name) or name]
        return member, member.size if isinstance(member, tarfile.TarInfo) else member.file_size  # type: ignore

    def read(self, name: str, limit: int | None = None) -> bytes:
        """A member's bytes, refused unread when its header declares more than the bound; never
        more than the bound is read, whatever the header says (a zip's declared size can lie)."""
        member, size = self._member(name)
        if limit is None and size > self.bound:
            raise over_bound(size, self.bound)
        want = min(size, self.bound) if limit is None else limit
        try:
            if isinstance(self._handle, zipfile.ZipFile):
                with self._handle.open(member) as f:  # type: ignore[arg-type]
                    return f.read(want)
            f = self._handle.extractfile(member)  # type: ignore[union-attr,arg-type]
            return f.read(want) if f is not None else b""
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, RuntimeError, NotImplementedError) as err:
            raise BadImage(f"cannot be read from the archive ({err})") from None

    def size(self, name: str) -> int:
        return self._member(name)[1]

    def fingerprint(self, names: list[str]) -> str:  # the archive as a whole stands for its members
        st = self.path.stat()
        return hashlib.sha256(_encoded(f"{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}")).hexdigest()[:24]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None, "_pid": -1, "_tree": None}


def _starts_like_zip(path: Path) -> bool:
    """A zip by its first bytes: ``zipfile.is_zipfile`` also accepts a tar whose last member is a zip."""
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _check_tar_end(handle: tarfile.TarFile, path: Path) -> None:
    """An uncompressed tar cut at a block boundary reads as a shorter, valid-looking archive:
    the end-of-archive block (512 zero bytes) must follow the last member."""
    if isinstance(handle.fileobj, io.BufferedReader):
        handle.fileobj.seek(handle.offset)
        if handle.fileobj.read(512) != bytes(512):
            raise DataError(f"archive {path} is truncated (no end-of-archive block after its last member): "
                            "a partial download or copy? fetch it again")


def _tar_tree(path: Path) -> tuple[tarfile.TarFile, _ArchiveTree]:
    handle = tarfile.open(path)  # noqa: SIM115  (kept open: members are read on demand)
    members = handle.getmembers()
    _check_tar_end(handle, path)
    tree = _ArchiveTree()
    for m in members:
        if m.isdir():
            tree.add(m.name, "dir")
        elif m.issym():  # relative to the link's own folder
            target = m.linkname if m.linkname.startswith("/") else posixpath.join(posixpath.dirname(m.name), m.linkname)
            tree.add(m.name, "link", target)
        elif m.islnk():  # a hard link: the same data as a member stored earlier, named from the top
            tree.add(m.name, "link", m.linkname)
        elif m.isreg():
            tree.add(m.name, "file", m)
        else:
            tree.ignored[m.name] = "not a regular file"
    return handle, tree


def _zip_tree(path: Path) -> tuple[zipfile.ZipFile, _ArchiveTree]:
    handle = zipfile.ZipFile(path)
    tree = _ArchiveTree()
    for info in handle.infolist():
        if info.is_dir():
            tree.add(info.filename, "dir")
        elif stat.S_ISLNK(info.external_attr >> 16):
            tree.ignored[info.filename] = "a symbolic link stored in a zip (not followed)"
        else:  # some Windows tools store '\\' where the zip format says '/'
            tree.add(info.filename.replace("\\", "/"), "file", info)
    return handle, tree


def open_source(path: Path) -> FileSource:
    """A directory or an archive's files."""
    if path.is_dir():
        return DirectorySource(path)
    if path.is_file():
        return ArchiveSource(path)
    raise DataError(f"{path} is neither a folder nor an archive file")


def head(source: FileSource, name: str, n: int) -> bytes:
    """The first ``n`` bytes of a file (to recognise an image by its content)."""
    try:
        return source.read(name, limit=n)
    except (OSError, UnreadableFile):
        return b""

