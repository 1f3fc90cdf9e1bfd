"""Speaking to the sound card: the default output device, fed by its own thread."""

from __future__ import annotations

import queue
import threading

import numpy as np

from voiceclone.speak.sinks import OutputError


class PlaybackSink:
    """The default output device, fed from a queue by its own thread so that making audio never waits."""

    def __init__(self, sample_rate: int):
        try:
            import sounddevice
        except OSError:
            raise OutputError(
                "--play needs the PortAudio library: install it (Debian/Ubuntu: apt-get install libportaudio2; "
                "macOS: brew install portaudio) or write a file with -o"
            ) from None
        try:
            self._stream = sounddevice.OutputStream(samplerate=sample_rate, channels=1, dtype="float32")
            self._stream.start()
        except Exception as exc:  # PortAudioError and friends: no device, busy device
            raise OutputError(f"cannot open the sound output ({exc}); write a file with -o instead") from None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self._stream.write(chunk.astype(np.float32).reshape(-1, 1))

    def write(self, chunk: np.ndarray) -> None:
        """Queue samples for playback."""
        self._queue.put(chunk)

    def close(self, complete: bool) -> None:
        """Play out what is queued (complete) or stop at once."""
        if not complete:
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put(None)
        self._thread.join()
        self._stream.stop()
        self._stream.close()
