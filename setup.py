"""Packaging for sippy, the SIP B2BUA on Twisted."""

from setuptools import find_packages, setup

setup(
    name="sippy",
    version="0.1.0",
    description="SIP Back-to-Back User Agent (B2BUA) on Twisted, a port of the Sippy B2BUA design",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="BSD-2-Clause",
    packages=find_packages(include=["sippy", "sippy.*"]),
    python_requires=">=3.9",
    install_requires=[
        # tls: pyOpenSSL and service_identity, for the TLS of the WSS listener (sippy.Wss_server)
        # and of SIP over TLS (sippy.Tls_server: the peer's name checked when we connect).
        "Twisted[tls]>=22.10",
        "pyrad>=2.4",
        "python-daemon>=2.3",
        # sippy.Rtp (Sippy 2.x programs that send and receive audio): RTP packets, jitter
        # buffer and mu-law from rtpsynth, G.722 from g722. Small binary wheels, as in Sippy 2.x.
        "rtpsynth>=1.3",
        "g722>=1.2",
        # SIP over WebSocket (sippy.Wss_server): autobahn's Twisted flavour, on the one reactor.
        "autobahn>=23",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "ruff>=0.5",
            "rtp.io>=1.1",
            # A WebSocket client for the WSS tests (blocking, beside the B2BUA's reactor).
            "websockets>=12",
            # The SIP fuzz target (tests/fuzz/fuzz_sip.py); wheels for Linux x86_64.
            "atheris>=2.3; platform_system == 'Linux' and platform_machine == 'x86_64'",
        ],
    },
    entry_points={
        "console_scripts": [
            "b2bua_simple=sippy.b2bua_simple:main",
            "b2bua_radius=sippy.b2bua_radius:main",
        ],
    },
    scripts=[],
    data_files=[("share/sippy", ["dictionary"])],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Twisted",
        "Topic :: Communications :: Internet Phone",
    ],
)
