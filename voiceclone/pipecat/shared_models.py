"""The VAD and turn models, loaded once per process and shared by every call.

Pipecat's `SileroVADAnalyzer` and `LocalSmartTurnAnalyzerV3` each open their ONNX model in `__init__`, so a server
that builds a pipeline per call loads them again for every caller. What a call must own is only its state: Silero
carries a recurrent state and a little context from one window to the next (kept on its `SileroOnnxModel`, passed
into `session.run` each time), and the smart-turn model has none. An `onnxruntime.InferenceSession` may be run
from several threads at once, so one session serves all calls; each call gets its own analyzer with its own state.

Both classes rely on the attributes Pipecat 1.14's `__init__` sets (`_model`, `_windows_since_reset`,
`_low_confidence_windows`; `_session`, `_log_data`); `tests/test_shared_models.py` checks that a shared analyzer
scores exactly like Pipecat's own, so an upgrade that changes them fails there, not in a call.
"""

from __future__ import annotations

from importlib import resources

import onnxruntime as ort
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.utils.env import env_truthy

from voiceclone.once import once
from voiceclone.pipecat.speech_pauses import SpeechPauses


def _packaged(package: str, name: str) -> str:
    return str(resources.files(package).joinpath(name))


@once  # two calls arriving together open it once
def _silero_session():
    # Pipecat's own options: one thread, CPU (the model is tiny; threads cost more than they give).
    return SileroOnnxModel(_packaged("pipecat.audio.vad.data", "silero_vad.onnx"), force_onnx_cpu=True).session


@once
def _smart_turn_session():
    options = ort.SessionOptions()  # as LocalSmartTurnAnalyzerV3 sets them, with its default of one CPU
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    path = _packaged("pipecat.audio.turn.smart_turn.data", "smart-turn-v3.2-cpu.onnx")
    return ort.InferenceSession(path, sess_options=options)


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """Pipecat's Silero VAD with the process's one ONNX session: this call's recurrent state, nobody's model.

    Given `pauses`, it also reports each pause in the speech (SPEAKING -> STOPPING) and each resumption
    (STOPPING -> SPEAKING) there, the moment it sees them, for work that can start before the VAD's stop.
    """

    def __init__(
        self, *, sample_rate: int | None = None, params: VADParams | None = None, pauses: SpeechPauses | None = None
    ):
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)  # not SileroVADAnalyzer's: it loads
        self._pauses = pauses
        model = SileroOnnxModel.__new__(SileroOnnxModel)
        model.session = _silero_session()
        model.sample_rates = [8000, 16000]
        model.reset_states()
        self._model = model
        self._windows_since_reset = 0
        self._low_confidence_windows = 0

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Pipecat's analysis; a change between SPEAKING and STOPPING is reported to `pauses`."""
        before = getattr(self, "_vad_state", None)  # set with the sample rate, before any audio
        state = await super().analyze_audio(buffer)
        if self._pauses is not None:
            if before == VADState.SPEAKING and state == VADState.STOPPING:
                self._pauses.paused()
            elif before == VADState.STOPPING and state == VADState.SPEAKING:
                self._pauses.resumed()
        return state


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """Pipecat's bundled smart-turn v3 model with the process's one ONNX session (the model keeps no state)."""

    def __init__(self, **kwargs):
        BaseSmartTurn.__init__(self, **kwargs)  # not LocalSmartTurnAnalyzerV3's: it loads the model
        self._log_data = env_truthy("PIPECAT_SMART_TURN_LOG_DATA", default=False)
        self._session = _smart_turn_session()


def preload(smart_turn: bool = False) -> None:
    """Open the VAD session, and the turn model's when it is used, before the first caller."""
    _silero_session()
    if smart_turn:
        _smart_turn_session()
