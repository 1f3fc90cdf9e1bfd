"""The bot decodes a caller's audio after 1 packet (20 ms) instead of aiortc's 4 (80 ms added to every turn)."""

from __future__ import annotations

from types import SimpleNamespace

from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from voiceclone.config.sections import WebRTCTransportConfig
from voiceclone.pipecat.webrtc import shorten_receive_buffer


def packets(count: int) -> list[RtpPacket]:
    """Opus packets of 20 ms each, as the receiver hands them to its buffer (payload already unpacked)."""
    made = []
    for n in range(count):
        packet = RtpPacket(payload_type=111, sequence_number=n, timestamp=960 * n)
        packet._data = b"\xf8"  # what aiortc's receiver sets before buffering
        made.append(packet)
    return made


async def test_the_audio_receiver_releases_a_packet_as_soon_as_the_next_one_comes():
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        receiver = pc.getReceivers()[0]
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        released = [buffer.add(p)[1] for p in packets(6)]
        assert [f is not None for f in released] == [False] * 4 + [True] * 2  # aiortc: 80 ms held back

        shorten_receive_buffer(SimpleNamespace(pc=pc), WebRTCTransportConfig().receive_buffer_frames)
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        released = [buffer.add(p)[1] for p in packets(6)]
        assert [f is not None for f in released] == [False] + [True] * 5
        assert [f.timestamp for f in released[1:]] == [960 * n for n in range(5)]
    finally:
        await pc.close()
