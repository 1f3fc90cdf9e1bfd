"""Watermark cost and robustness: PerTh marking whole and streamed in the converter's chunk sizes, detection.

    python benchmarks/watermark.py [--seconds 5] [--runs 5] [--edits] [--splices] [--false-alarms]

Prints medians over runs on Piper speech at 22050 Hz: the model's load time (once), whole marking (time and
real-time factor), streamed marking in the converter's chunk schedule (the extra time before the first chunk can
be played, the samples that chunk keeps, the total time and real-time factor), and detection. `--edits` adds the
detector's confidence on marked and unmarked speech after common edits (resampling, codecs, trimming, noise, ...).
`--splices` puts a marked clone of 0.5, 1, 2 and 5 s inside a minute of unmarked speech, edits the whole, and says
how often and how exactly the stretch is found; `--false-alarms` runs the detector on unmarked speech of many
voices after every edit and counts the files called marked (it should be none).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.process import machine  # noqa: E402
from testkit.speech import speech_sample  # noqa: E402
from voiceclone.openvoice.converter import CHUNK_FRAMES, FIRST_CHUNK_FRAMES, chunk_spans  # noqa: E402
from voiceclone.responsible.detection import THRESHOLD, detect  # noqa: E402
from voiceclone.responsible.watermark import Watermarker  # noqa: E402

RATE = 22050
HOP = 256  # samples per converter frame at 22050 Hz


def converter_chunks(audio: np.ndarray) -> list[np.ndarray]:
    """`audio` cut as the converter yields it: 8 frames twice, then doubling up to 256 frames."""
    return [audio[a * HOP : b * HOP] for a, b in chunk_spans(-(-len(audio) // HOP), FIRST_CHUNK_FRAMES, CHUNK_FRAMES)]


def stream_once(marker: Watermarker, chunks: list[np.ndarray]) -> tuple[float, float, int]:
    """(seconds for the first push, seconds for everything, samples the first push returned)."""
    t0 = time.perf_counter()
    stream = marker.stream(RATE)
    first = stream.push(chunks[0])
    t1 = time.perf_counter()
    for chunk in chunks[1:]:
        stream.push(chunk)
    stream.flush()
    return t1 - t0, time.perf_counter() - t0, len(first)


def cost(seconds: float, runs: int) -> None:
    t0 = time.perf_counter()
    marker = Watermarker().load()
    load_s = time.perf_counter() - t0
    audio = speech_sample(seconds, RATE)
    chunks = converter_chunks(audio)

    whole = []
    for _ in range(runs):
        t0 = time.perf_counter()
        marked = marker.mark(audio, RATE)
        whole.append(time.perf_counter() - t0)
    streams = [stream_once(marker, chunks) for _ in range(runs)]
    detects = []
    for _ in range(runs):
        t0 = time.perf_counter()
        found = detect(marked, RATE)
        detects.append(time.perf_counter() - t0)

    first_ms = statistics.median(s[0] for s in streams) * 1000
    stream_s = statistics.median(s[1] for s in streams)
    mark = marked.astype(np.float64) - audio
    snr = 10 * np.log10(np.sum(audio.astype(np.float64) ** 2) / np.sum(mark**2))
    print(f"PerTh watermark on {seconds:g} s of Piper speech at {RATE} Hz, medians of {runs} runs")
    print(f"  model load + warm-up (once per process)          {load_s * 1000:8.0f} ms")
    print(f"  whole: mark                                      {statistics.median(whole) * 1000:8.0f} ms")
    print(f"  whole: real-time factor                          {statistics.median(whole) / seconds:8.3f}")
    print(f"  streamed ({len(chunks)} chunks, first {len(chunks[0])} samples): first push  {first_ms:8.1f} ms")
    print(f"  streamed: samples out of the first push           {streams[0][2]:5d} of {len(chunks[0])}")
    print(f"  streamed: all chunks + flush                     {stream_s * 1000:8.0f} ms")
    print(f"  streamed: real-time factor added                 {stream_s / seconds:8.3f}")
    print(f"  detect                                           {statistics.median(detects) * 1000:8.0f} ms")
    print(f"  detect: confidence on the marked audio           {found.confidence:8.4f}")
    print(f"  SNR of the marked audio (speech to mark)         {snr:8.1f} dB")


# --------------------------------------------------------------------------------------------------- edits
def _through_file(audio, rate, fmt, **kw):
    import soundfile as sf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x.{fmt.lower()}"
        sf.write(path, audio, rate, format=fmt, **kw)
        return sf.read(path, dtype="float32")


def _sox(audio, rate, ext, before=(), effects=()):
    import soundfile as sf

    with tempfile.TemporaryDirectory() as folder:
        src, mid, back = (Path(folder) / name for name in ("in.wav", f"mid.{ext}", "back.wav"))
        sf.write(src, audio, rate)
        subprocess.run(["sox", src, *before, mid, *effects], check=True, capture_output=True)
        subprocess.run(["sox", mid, back], check=True, capture_output=True)
        out, out_rate = sf.read(back, dtype="float32")
        return (out.mean(axis=1) if out.ndim > 1 else out), out_rate


def _edits() -> dict:
    import soxr
    from scipy.signal import butter, fftconvolve, sosfilt, sosfiltfilt

    rng = np.random.default_rng(1)

    def noise(a, r, snr):
        return (a + rng.standard_normal(len(a)) * np.sqrt(np.mean(a**2) / 10 ** (snr / 10))).astype(np.float32), r

    def band(a, r, lo, hi):
        return sosfiltfilt(butter(6, [lo, hi], "bandpass", fs=r, output="sos"), a).astype(np.float32), r

    def telephone(a, r):
        return band(soxr.resample(a, r, 8000), 8000, 300, 3400)

    def reverb(a, r):
        t = np.arange(int(0.4 * r)) / r
        ir = rng.standard_normal(len(t)) * np.exp(-t / 0.08)
        ir[0] = 5
        y = fftconvolve(a, ir)[: len(a)]
        return (0.9 * y / np.abs(y).max()).astype(np.float32), r

    edits = {
        "none": lambda a, r: (a, r),
        "resampled to 16 kHz": lambda a, r: (soxr.resample(a, r, 16000), 16000),
        "resampled to 8 kHz": lambda a, r: (soxr.resample(a, r, 8000), 8000),
        "resampled to 44.1 kHz": lambda a, r: (soxr.resample(a, r, 44100), 44100),
        "MP3 (libsndfile default)": lambda a, r: _through_file(a, r, "MP3"),
        "Ogg Vorbis": lambda a, r: _through_file(a, r, "OGG"),
        "Opus at 48 kHz": lambda a, r: _through_file(soxr.resample(a, r, 48000), 48000, "OGG", subtype="OPUS"),
        "8-bit PCM": lambda a, r: _through_file(a, r, "WAV", subtype="PCM_U8"),
        "first and last 0.5 s trimmed": lambda a, r: (a[r // 2 : -r // 2], r),
        "first 1 s only": lambda a, r: (a[:r], r),
        "12 dB quieter": lambda a, r: (a * 0.25, r),
        "6 dB louder, clipped": lambda a, r: (np.clip(2 * a, -1, 1), r),
        "noise at 30 dB SNR": lambda a, r: noise(a, r, 30),
        "noise at 20 dB SNR": lambda a, r: noise(a, r, 20),
        "noise at 10 dB SNR": lambda a, r: noise(a, r, 10),
        "8 kHz telephone band 300-3400 Hz": telephone,
        "high-passed at 80 Hz": lambda a, r: (sosfilt(butter(4, 80, "highpass", fs=r, output="sos"), a), r),
        "low-passed at 4 kHz": lambda a, r: band(a, r, 20, 4000),
        "reverberation (0.4 s)": reverb,
        "polarity inverted": lambda a, r: (-a, r),
        "5% faster (pitch up)": lambda a, r: (soxr.resample(a, r, int(r / 1.05)), r),
    }
    if shutil.which("sox"):
        edits["MP3 at 32 kbit/s (sox)"] = lambda a, r: _sox(a, r, "mp3", ["-C", "32"])
        edits["tempo x1.1, pitch kept (sox)"] = lambda a, r: _sox(a, r, "wav", effects=["tempo", "1.1"])
        edits["pitch +100 cents (sox)"] = lambda a, r: _sox(a, r, "wav", effects=["pitch", "100"])
    return edits


def robustness(seconds: float) -> None:
    marker = Watermarker().load()
    audio = speech_sample(seconds, RATE)
    stream = marker.stream(RATE)
    streamed = np.concatenate([stream.push(c) for c in converter_chunks(audio)] + [stream.flush()])
    sources = {
        "Piper, unmarked": (audio, RATE),
        "Piper, marked": (marker.mark(audio, RATE), RATE),
        "Piper, streamed": (streamed, RATE),
    }
    if shutil.which("espeak-ng"):
        import soundfile as sf

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "e.wav"
            text = "The children watched the fishing boats return through the thick morning fog. " * 2
            subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
            speech, rate = sf.read(path, dtype="float32")
        speech = speech[: int(seconds * rate)]
        sources["espeak-ng, unmarked"] = (speech, rate)
        sources["espeak-ng, marked"] = (marker.mark(speech, rate), rate)
    print(f"\nDetector confidence after edits ({seconds:g} s of speech; present at >= {THRESHOLD:g})")
    print(f"{'edit':34}" + "".join(f"{name:>21}" for name in sources))
    for name, edit in _edits().items():
        row = []
        for source, rate in sources.values():
            edited, edited_rate = edit(source, rate)
            row.append(detect(np.asarray(edited, dtype=np.float32), edited_rate).confidence)
        print(f"{name:34}" + "".join(f"{value:21.3f}" for value in row))


# ---------------------------------------------------------------------------------- localisation, false alarms
TEXTS = (
    "The children watched the fishing boats return through the thick morning fog. Nobody knew how long the storm "
    "would last, but the old captain said it would pass before supper.",
    "Please remember to water the plants on Tuesday, and leave the spare key under the blue flower pot by the door.",
    "Our quarterly figures look better than expected, although shipping costs rose sharply in the last few weeks.",
    "When the train finally arrived, the platform was so crowded that half of us had to wait for the next one.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3", "en-us+f4", "en-sc", "en-us+m7", "en-029")


def _espeak(text: str, voice: str, seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "e.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
        speech, rate = sf.read(path, dtype="float32")
    while len(speech) < seconds * rate:
        speech = np.concatenate([speech, speech])
    return speech[: int(seconds * rate)], rate


def _unmarked_voices(seconds: float) -> dict:
    """Unmarked speech: Piper, Piper pitch-shifted with sox, and espeak-ng's voices, `seconds` each."""
    piper = speech_sample(seconds, RATE)
    sources = {"Piper": (piper, RATE)}
    if shutil.which("sox"):
        for cents in (-400, 300):
            sources[f"Piper {cents:+d} cents"] = _sox(piper, RATE, "wav", effects=["pitch", str(cents)])
        for voice in VOICES:
            sources[f"espeak-ng {voice}"] = _espeak(" ".join(TEXTS), voice, seconds)
    return sources


def _hp(cutoff: float):
    from scipy.signal import butter, sosfilt

    return lambda a, r: (sosfilt(butter(4, cutoff, "highpass", fs=r, output="sos"), a).astype(np.float32), r)


def false_alarms(seconds: float) -> None:
    edits = _edits()
    edits.update({f"high-passed at {hz} Hz": _hp(hz) for hz in (20, 40, 60, 100, 120)})
    sources = _unmarked_voices(seconds)
    flagged, files, examined, worst = [], 0, 0.0, (0.0, "")
    print(f"\nFalse alarms: {len(sources)} unmarked voices x {len(edits)} edits, {seconds:g} s each")
    for source, (audio, rate) in sources.items():
        for name, edit in edits.items():
            edited, edited_rate = edit(audio, rate)
            verdict = detect(np.asarray(edited, dtype=np.float32), edited_rate)
            files += 1
            examined += verdict.seconds
            worst = max(worst, (verdict.confidence, f"{source}, {name}"))
            if verdict.present:
                flagged.append(f"{source}, {name}: {verdict.confidence:.3f} {[s.to_dict() for s in verdict.stretches]}")
    print(f"files called marked: {len(flagged)} of {files} ({examined / 60:.0f} minutes of unmarked audio)")
    print(f"highest confidence: {worst[0]:.3f} ({worst[1]})")
    for line in flagged:
        print("  " + line)


def splices(context_s: float = 30.0, where_s: float = 13.3, host_count: int = 5) -> None:
    """Marked clones of several lengths inside unmarked speech of other voices, then edited as a whole."""
    marker = Watermarker().load()
    hosts = dict([kv for kv in _unmarked_voices(context_s).items() if "cents" not in kv[0]][:host_count])
    clone = marker.mark(speech_sample(6.0, RATE), RATE)  # the clone: Piper speech as voiceclone speaks it, marked
    picked = (
        "none",
        "resampled to 16 kHz",
        "MP3 at 32 kbit/s (sox)",
        "MP3 (libsndfile default)",
        "Opus at 48 kHz",
        "12 dB quieter",
        "noise at 30 dB SNR",
        "8 kHz telephone band 300-3400 Hz",
        "reverberation (0.4 s)",
    )
    edits = {k: v for k, v in _edits().items() if k in picked}
    print(f"\nSplices: a marked clone inside {context_s:g} s of unmarked speech ({len(hosts)} host voices), edited")
    print(f"{'edit':34}" + "".join(f"{f'{length:g} s clone':>22}" for length in (0.5, 1, 2, 5)))
    for name, edit in edits.items():
        row = []
        for length in (0.5, 1.0, 2.0, 5.0):
            found, errors, confidences = 0, [], []
            for host, host_rate in hosts.values():
                piece = clone[: int(length * RATE)]
                if host_rate != RATE:
                    import soxr

                    piece = soxr.resample(piece, RATE, host_rate).astype(np.float32)
                at = int(where_s * host_rate)
                spliced = np.concatenate([host[:at], piece, host[at:]]).astype(np.float32)
                edited, edited_rate = edit(spliced, host_rate)
                verdict = detect(np.asarray(edited, dtype=np.float32), edited_rate)
                hits = [s for s in verdict.stretches if s.start < where_s + length and s.end > where_s]
                if verdict.present and hits:
                    found += 1
                    errors.append(abs(hits[0].start - where_s) + abs(hits[-1].end - where_s - length))
                    confidences.append(max(s.confidence for s in hits))
            cell = f"{found}/{len(hosts)}"
            if found:
                cell += f" c{statistics.median(confidences):.2f} e{statistics.median(errors):.2f}s"
            row.append(cell)
        print(f"{name:34}" + "".join(f"{cell:>22}" for cell in row), flush=True)
    print("found/hosts; c: median confidence of the found stretch; e: median error of its two ends, seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--edits", action="store_true", help="also print the confidences after common edits")
    parser.add_argument("--splices", action="store_true", help="also find marked clones spliced into speech")
    parser.add_argument("--false-alarms", action="store_true", help="also count unmarked files called marked")
    parser.add_argument("--alarm-seconds", type=float, default=30.0, help="seconds of each unmarked voice")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    cost(args.seconds, args.runs)
    if args.edits:
        robustness(args.seconds)
    if args.splices:
        splices()
    if args.false_alarms:
        false_alarms(args.alarm_seconds)


if __name__ == "__main__":
    main()
