"""The local transport: this computer's microphone and speakers (the `local` extra: pyaudio)."""

from __future__ import annotations

from voiceclone.audio.reader import quiet_stderr
from voiceclone.config.needs import LOCAL_EXTRA
from voiceclone.config.sections import BotConfig, LocalTransportConfig
from voiceclone.errors import UserError
from voiceclone.pipecat.bot import VoiceResources, build_worker, report_error, run_worker, speak_opening_line


def _local_audio():
    """PyAudio and Pipecat's local audio transport, from the `local` extra (the one place they are imported).

    Returns:
        (the `pyaudio` module, `LocalAudioTransport`, `LocalAudioTransportParams`).

    Raises:
        UserError: the extra is not installed, with how to install it.
    """
    try:
        import pyaudio
        from pipecat.transports.local.audio import LocalAudioTransport, LocalAudioTransportParams
    except ImportError:
        raise UserError(LOCAL_EXTRA) from None
    return pyaudio, LocalAudioTransport, LocalAudioTransportParams


async def run_local(cfg: BotConfig, t: LocalTransportConfig, resources: VoiceResources, announce) -> None:
    """Talk on this computer's microphone and speakers until Ctrl-C."""
    pyaudio, LocalAudioTransport, LocalAudioTransportParams = _local_audio()
    with quiet_stderr():  # ALSA and JACK print pages of probing noise on the terminal
        _check_sound_devices(pyaudio, t.input_device, t.output_device)
        transport = LocalAudioTransport(
            LocalAudioTransportParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                input_device_index=t.input_device,
                output_device_index=t.output_device,
            )
        )
    worker = build_worker(cfg, resources, transport.input(), transport.output(), on_error=report_error)

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker, _frame):
        await speak_opening_line(worker, cfg)

    announce("Talking on this computer's microphone and speakers: speak now, Ctrl-C to stop.")
    await run_worker(worker, handle_signals=True)


def _check_sound_devices(pyaudio, input_index: int | None, output_index: int | None) -> None:
    """A microphone and a speaker exist (PyAudio otherwise fails later, inside the running pipeline).

    Args:
        pyaudio: The `pyaudio` module (from `_local_audio`).
        input_index: The configured microphone, or None for the default one.
        output_index: The configured speaker, or None for the default one.
    """
    pa = pyaudio.PyAudio()
    try:
        for kind, index, default in (
            ("microphone", input_index, pa.get_default_input_device_info),
            ("speaker", output_index, pa.get_default_output_device_info),
        ):
            try:
                info = pa.get_device_info_by_index(index) if index is not None else default()
            except (OSError, ValueError):
                where = f"device {index}" if index is not None else "a default one"
                raise UserError(
                    f"no {kind} found ({where}); plug one in or set transport.input_device/output_device"
                ) from None
            channels = info["maxInputChannels"] if kind == "microphone" else info["maxOutputChannels"]
            if channels < 1:
                raise UserError(f"device {info['index']} ({info['name']}) is not a {kind}")
    finally:
        pa.terminate()
