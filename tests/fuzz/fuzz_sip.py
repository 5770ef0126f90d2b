"""atheris (libFuzzer) target over SipRequest, SipResponse, SdpBody, the transaction manager's
entry point and (for INVITEs) both B2BUAs' call machinery, with the properties of
tests/fuzz/harness.py.

    .venv/bin/python tests/fuzz/fuzz_sip.py -max_total_time=300 [-jobs=N] [corpus_dir ...]

Without a corpus directory it starts from the harness's seed messages (in a temporary one). A
crash leaves its input in crash-* (libFuzzer's -artifact_prefix says where); replay it with the
file as the only argument. tests/test_fuzz_sip.py runs a short, bounded session of this in CI.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

with atheris.instrument_imports(include=["sippy"]):
    from tests.fuzz.harness import SEEDS, check_b2b, check_manager, check_parsers


def _fail(why: str) -> None:
    raise AssertionError(why)


def test_one_input(data: bytes) -> None:
    check_parsers(data)
    check_manager(data, _fail)
    if data.startswith(b"INVITE "):
        check_b2b(data, _fail)


def main() -> None:
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        corpus = tempfile.mkdtemp(prefix="fuzz-sip-")
        for i, seed in enumerate(SEEDS):
            with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
                f.write(seed)
        argv.append(corpus)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
