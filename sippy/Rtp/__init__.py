"""An RTP endpoint for programs that send and receive audio (Sippy 2.x `sippy.Rtp` API).

`EPoint.RTPEPoint` binds one UDP socket on the Twisted reactor, paces the audio the program
feeds it (`OutputWorker`), and decodes what the peer sends through a jitter buffer (`Ingest`).
Packets and the jitter buffer come from `rtpsynth`, G.722 from `g722`.
"""
