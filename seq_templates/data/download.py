"""Downloads with a checksum, into a cache, failing fast when offline."""

import hashlib
import pathlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

from seq_templates import errors

DOWNLOAD_TIMEOUT_SECONDS = 20


def sha256_of(path):
    """Returns the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, destination, sha256=None, timeout=DOWNLOAD_TIMEOUT_SECONDS):
    """Downloads ``url`` to ``destination`` via a temp file, checking the sha256.

    Args:
        url: Address to fetch.
        destination: Final file path; written only once the checksum matches.
        sha256: Expected hex digest, or None to skip the check.
        timeout: Seconds to wait for the connection before giving up.

    Returns:
        The destination path.

    Raises:
        SeqTemplatesError: The download failed (e.g. no network) or the checksum
            did not match; nothing is left at ``destination``.
    """
    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=destination.parent, delete=False,
                                     prefix=f".{destination.name}.") as temporary_file:
        temporary_path = pathlib.Path(temporary_file.name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, temporary_file)
        except (urllib.error.URLError, OSError, ValueError) as error:
            temporary_path.unlink(missing_ok=True)
            reason = getattr(error, "reason", error)
            raise errors.SeqTemplatesError(f"download of {url} failed ({reason})") from None
    if sha256 is not None:
        actual = sha256_of(temporary_path)
        if actual != sha256:
            temporary_path.unlink(missing_ok=True)
            raise errors.SeqTemplatesError(
                f"download of {url} has sha256 {actual}, expected {sha256}; the file changed "
                "upstream or was corrupted"
            )
    temporary_path.replace(destination)
    return destination


def extract(archive_path, destination):
    """Extracts a .zip or .tar(.gz) archive into ``destination`` (via a temp folder)."""
    archive_path = pathlib.Path(archive_path)
    destination = pathlib.Path(destination)
    temporary_folder = pathlib.Path(tempfile.mkdtemp(dir=destination.parent,
                                                     prefix=f".{destination.name}."))
    try:
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as archive:
                archive.extractall(temporary_folder)
        else:
            with tarfile.open(archive_path) as archive:
                archive.extractall(temporary_folder, filter="data")
        for item in temporary_folder.iterdir():
            target = destination / item.name
            if not target.exists():
                destination.mkdir(parents=True, exist_ok=True)
                item.replace(target)
    finally:
        shutil.rmtree(temporary_folder, ignore_errors=True)
    return destination
