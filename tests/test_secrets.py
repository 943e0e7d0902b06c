"""Secrets file: private mode only, KEY=VALUE lines with file:line errors, only named secrets given."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitflowd.dag import Dag, Task
from gitflowd.errors import RunError
from gitflowd.secrets import Masker, MaskingWriter, SecretsError, load_file, secrets_for


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_parsing(tmp_path: Path) -> None:
    path = _file(tmp_path, "# comment\n\nA=1\nexport B = two words \nC='quoted = yes'\nD=\"x\"\nE=a=b\n")
    assert load_file(path) == {"A": "1", "B": "two words", "C": "quoted = yes", "D": "x", "E": "a=b"}


@pytest.mark.parametrize(("text", "mode", "message"), [
    ("A=1\n", 0o640, "accessible by group or others (mode 0640); run: chmod 600"),
    ("A=1\n", 0o604, "mode 0604"),
    ("A=1\nnot a line\n", 0o600, ":2: expected KEY=VALUE"),
    ("1A=x\n", 0o600, ":1: expected KEY=VALUE"),
])
def test_bad_files(tmp_path: Path, text: str, mode: int, message: str) -> None:
    with pytest.raises(SecretsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_file(_file(tmp_path, text, mode))
    with pytest.raises(SecretsError, match="No such file"):
        load_file(tmp_path / "absent")


def test_a_dag_gets_only_what_it_names(tmp_path: Path) -> None:
    path = _file(tmp_path, "A=1\nB=2\n")
    dag = Dag("d", {"t": Task("t", cmd="true")}, secrets=("B",))
    assert secrets_for(dag, str(path)) == {"B": "2"}
    assert secrets_for(Dag("e", {"t": Task("t", cmd="true")}), None) == {}
    with pytest.raises(RunError, match="needs secrets missing from .*: C"):
        secrets_for(Dag("f", {"t": Task("t", cmd="true")}, secrets=("A", "C")), str(path))
    with pytest.raises(RunError, match="no secrets file is given"):
        secrets_for(dag, None)


def test_masker_on_files(tmp_path: Path) -> None:
    log = tmp_path / "t.1.log"
    log.write_bytes(b"token=hunter22 and hunter2 hunter22\n")
    Masker(["hunter22", "hunter2"]).mask_file(log)
    assert log.read_bytes() == b"token=*** and *** ***\n"
    assert not Masker([""])
    Masker(["x"]).mask_file(tmp_path / "missing.log")  # no secrets worth masking: nothing happens


PIECES = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"\n", b"abcdef", b"s3cr3t", b"\xe2\x82"])


@given(st.lists(PIECES, max_size=40), st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_masking_pieces_as_they_arrive_equals_masking_the_whole(pieces: list[bytes], sizes: list[int]) -> None:
    """Secrets that overlap or prefix each other, split anywhere between writes (`logs -f`)."""
    masker = Masker(["abc", "abcdef", "efgh", "s3cr3t"])
    text, out = b"".join(pieces), io.BytesIO()
    writer, at = MaskingWriter(masker, out), 0
    for size in sizes * (len(text) // len(sizes) + 1):
        if at >= len(text):
            break
        writer.write(text[at:at + size])
        at += size
    writer.close()
    assert out.getvalue() == masker.mask_bytes(text)


def test_a_masked_line_is_written_whole_without_waiting_for_more() -> None:
    out = io.BytesIO()
    MaskingWriter(Masker(["s3cr3tvalue"]), out).write(b"token s3cr3tvalue\nnext s3c")
    assert out.getvalue() == b"token ***\nnext "  # only what could still become a secret is held



def test_a_directory_or_a_file_not_in_utf8_is_one_line(tmp_path: Path) -> None:
    # Both were tracebacks: `--secrets-file /etc/gitflowd` (the directory), a file saved as Latin-1.
    folder = tmp_path / "secrets.d"
    folder.mkdir(mode=0o700)
    with pytest.raises(SecretsError, match=r"^secrets file .*secrets.d: Is a directory$"):
        load_file(folder)
    latin = tmp_path / "latin.env"
    latin.write_bytes(b"# ok\nKEY=caf\xe9\n")
    latin.chmod(0o600)
    with pytest.raises(SecretsError, match=r"latin.env:2: not UTF-8 text \(byte 12\)$"):
        load_file(latin)
