"""Kinds of ``Rtp_proxy_session`` (Sippy 2.5's package): ``webrtc``, a browser's media."""
